/**
 * The job's journal: which frames are in `--output`, with their size and
 * SHA-256, so a coordinator that died can be replaced by running the same
 * `submit` again. It is one append-only JSON-lines file per output folder,
 * `<output>/.blendnet/journal.jsonl`, one line per accepted frame:
 *
 *   {"v":1,"render":"<renderKey>","frame":7,"file":"frame_0007.png","size":123,"sha256":"…","at":"…"}
 *
 * A line is appended only after the frame's file was fsynced and renamed
 * into place, and is fsynced itself before the frame counts as done, so a
 * record never claims more than the disk holds. Resume trusts a record
 * only when the file still matches it; anything else is rendered again.
 */
import { createReadStream } from 'node:fs'
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import { frameFileName, type ImageFormat } from '../job/naming.js'
import { hashFile } from '../net/fetch.js'
import { OutputWriteError } from './output.js'

const log = logger('journal')

export const JOURNAL_DIR = '.blendnet'
export const JOURNAL_FILE = 'journal.jsonl'

/** Files hashed at once while checking a folder on resume. */
const CHECK_PARALLELISM = 4

export interface JournalRecord {
  v: 1
  /** renderKeyOf(spec): what the frame's pixels depend on. */
  render: string
  frame: number
  file: string
  size: number
  sha256: string
  at: string
}

export interface ResumeCheck {
  /** Frames whose file matches the journal: not rendered again. */
  done: Set<number>
  /** Frames the journal lists whose file is missing, empty or changed. */
  changed: number[]
}

export function journalPath (outputDir: string): string {
  return join(outputDir, JOURNAL_DIR, JOURNAL_FILE)
}

export class Journal {
  readonly path: string
  private handle?: FileHandle
  /** Bytes of whole lines: a failed append is cut back to this. */
  private size = 0
  /** Appends run one at a time, so lines never interleave. */
  private queue: Promise<void> = Promise.resolve()
  /** This render's last line per frame, read or written: what a journal
   * removed while the job runs is written anew with. */
  private readonly lines = new Map<number, string>()
  private broken?: OutputWriteError

  /** `onRenewed` runs after a journal removed mid-job was written anew:
   * what else went with `.blendnet/` (the submit lock) can come back too. */
  constructor (readonly outputDir: string, readonly renderKey: string,
    private readonly onRenewed?: () => Promise<void>) {
    this.path = journalPath(outputDir)
  }

  /**
   * The last record of each frame of this render. A torn last line (a
   * crash or a full disk mid-append) and malformed lines are skipped.
   */
  async records (): Promise<Map<number, JournalRecord>> {
    const found = new Map<number, JournalRecord>()
    const info = await stat(this.path).catch(() => undefined)
    if (info === undefined) return found
    if (!info.isFile()) throw new Error(`${this.path} is not a file`)
    const lines = createInterface({ input: createReadStream(this.path), crlfDelay: Infinity })
    let skipped = 0
    for await (const line of lines) {
      if (line.trim() === '') continue
      const record = parseRecord(line)
      if (record === undefined) skipped++
      else if (record.render === this.renderKey) {
        found.set(record.frame, record)
        this.lines.set(record.frame, line + '\n')
      }
    }
    if (skipped > 0) log.warn('skipped unreadable journal lines', { path: this.path, lines: skipped })
    return found
  }

  /**
   * Which of `frames` are already in the folder: the file named for the
   * frame exists, is not empty, and its size and SHA-256 match its record.
   */
  async check (frames: readonly number[], format: ImageFormat): Promise<ResumeCheck> {
    const records = await this.records()
    const listed = frames.filter(f => records.has(f))
    const matches = new Map<number, boolean>()
    let next = 0
    const checkOne = async (): Promise<void> => {
      while (next < listed.length) {
        const frame = listed[next++]
        matches.set(frame, await this.matches(records.get(frame)!, format))
      }
    }
    await Promise.all(Array.from({ length: CHECK_PARALLELISM }, checkOne))
    const done = new Set(listed.filter(f => matches.get(f) === true))
    return { done, changed: listed.filter(f => !done.has(f)) }
  }

  /**
   * Records a frame already renamed into the output folder, durably.
   * Throws OutputWriteError when the journal cannot be written; after
   * that every append fails, so no later line follows a missing one.
   */
  async append (frame: number, file: string, size: number, sha256: Uint8Array): Promise<void> {
    const record: JournalRecord = {
      v: 1, render: this.renderKey, frame, file, size,
      sha256: Buffer.from(sha256).toString('hex'), at: new Date().toISOString()
    }
    const line = JSON.stringify(record) + '\n'
    const appended = this.queue.then(async () => {
      await this.write(line)
      this.lines.set(frame, line)
    })
    this.queue = appended.catch(() => {})
    await appended
  }

  async close (): Promise<void> {
    await this.queue
    await this.handle?.close()
    this.handle = undefined
  }

  private async write (line: string): Promise<void> {
    if (this.broken !== undefined) throw this.broken
    try {
      const handle = await this.openForAppend()
      // The frame's rename must be durable before a record vouches for it.
      await syncDir(this.outputDir)
      await handle.write(line)
      await handle.datasync()
      this.size += Buffer.byteLength(line)
    } catch (err) {
      await this.handle?.truncate(this.size).catch(() => {})
      this.broken = new OutputWriteError(`cannot write the journal ${this.path}: ${messageOf(err)}`, { cause: err })
      throw this.broken
    }
  }

  /**
   * Created on first use; a torn last line is ended so the next one parses.
   * A journal removed or replaced since (someone cleaned `.blendnet/` while
   * the job ran) is written anew, with this render's lines so far: appends
   * to the old handle would vouch for frames in a file nobody can read.
   */
  private async openForAppend (): Promise<FileHandle> {
    if (this.handle !== undefined) {
      const [held, named] = await Promise.all([this.handle.stat(), stat(this.path).catch(() => undefined)])
      if (named !== undefined && named.ino === held.ino && named.dev === held.dev) return this.handle
      log.warn('the journal was removed while the job ran; writing it anew', { path: this.path, frames: this.lines.size })
      await this.handle.close().catch(() => {})
      this.handle = undefined
      const handle = await this.openForAppend()
      const earlier = [...this.lines.values()].join('')
      if (earlier !== '') {
        await handle.write(earlier)
        this.size += Buffer.byteLength(earlier)
      }
      await this.onRenewed?.()
      return handle
    }
    const dir = join(this.outputDir, JOURNAL_DIR)
    await mkdir(dir, { recursive: true })
    const handle = await open(this.path, 'a+')
    try {
      const { size } = await handle.stat()
      this.size = size
      if (size > 0) {
        const last = Buffer.alloc(1)
        await handle.read(last, 0, 1, size - 1)
        if (last[0] !== 0x0a) {
          await handle.write('\n')
          this.size++
        }
      }
      await syncDir(dir)
    } catch (err) {
      await handle.close()
      throw err
    }
    this.handle = handle
    return handle
  }

  private async matches (record: JournalRecord, format: ImageFormat): Promise<boolean> {
    if (record.file !== frameFileName(record.frame, format)) return false
    const path = join(this.outputDir, record.file)
    const info = await stat(path).catch(() => undefined)
    if (info === undefined || !info.isFile() || info.size === 0 || info.size !== record.size) return false
    const sha256 = await hashFile(path).catch(() => undefined)
    return sha256 !== undefined && Buffer.from(sha256).toString('hex') === record.sha256
  }
}

/** A line as written by append(), or undefined. */
function parseRecord (line: string): JournalRecord | undefined {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  const r = value as Partial<JournalRecord> | null
  const ok = typeof r === 'object' && r !== null && r.v === 1 &&
    typeof r.render === 'string' && Number.isSafeInteger(r.frame) &&
    typeof r.file === 'string' && Number.isSafeInteger(r.size) && (r.size ?? 0) > 0 &&
    typeof r.sha256 === 'string' && /^[0-9a-f]{64}$/.test(r.sha256)
  return ok ? r as JournalRecord : undefined
}

/** Makes a rename or a new file in `dir` survive a crash (Linux, macOS). */
async function syncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync().catch((err: NodeJS.ErrnoException) => {
      // Some systems cannot fsync a folder; the record is still checked on resume.
      if (err.code !== 'EINVAL' && err.code !== 'EISDIR' && err.code !== 'EPERM') throw err
    })
  } finally {
    await handle.close()
  }
}
