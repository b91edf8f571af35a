/**
 * The `--output` folder. A frame is written to a temp file inside it, then
 * checked (size, SHA-256, decodes as an image of the job's format and
 * resolution) and only then renamed to its final name, so the folder never
 * holds a partial or unverified frame. Final names come from the frame
 * number alone: nothing a worker sends can name a path. Two copies of a
 * frame received at once (a speculative copy and its holder) are both
 * checked, but only the first is written and journaled.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Stream } from '@libp2p/interface'
import { verifyImage, type ExpectedImage } from '../image/verify.js'
import { frameFileName } from '../job/naming.js'
import { LocalWriteError, receiveFile } from '../net/streams.js'
import type { JobOutcome } from './events.js'
import type { Journal } from './journal.js'

/** `.frame_0007.png.3fa2c1d0.part`, as receive() names its temp files. */
const TEMP_NAME = /^\.frame_-?\d+\.\w+\.[0-9a-f]{8}\.part$/

/** `duplicate`: a good copy of a frame another upload wrote first. */
export type WriteResult = { ok: true, path: string } | { ok: false, reason: string, duplicate?: boolean }

export interface FolderAudit {
  intact: Set<number>
  gone: number[]
  changed: number[]
}

/**
 * The job's outcome as the folder has it at the end: a frame counts done
 * only if it is there as written (or as found on resume), also one the
 * coordinator had written when the job was stopped; one removed or
 * written over since fails, so the same command renders it again.
 */
export function outcomeInFolder (ran: JobOutcome, audit: FolderAudit,
  alreadyDone: ReadonlySet<number>): JobOutcome {
  // A frame the folder vouched for is judged by the audit, whatever the
  // coordinator counted.
  const audited = new Set([...audit.intact, ...audit.gone, ...audit.changed])
  const failedFrames = [
    ...ran.failedFrames.filter(f => !audited.has(f.frame)),
    ...audit.gone.map(frame => ({ frame, reason: 'removed from the output folder while the job ran' })),
    ...audit.changed.map(frame => ({ frame, reason: 'written over in the output folder while the job ran' }))
  ].sort((a, b) => a.frame - b.frame)
  return {
    ...ran,
    succeeded: failedFrames.length === 0,
    done: ran.total - failedFrames.length,
    alreadyThere: [...alreadyDone].filter(frame => audit.intact.has(frame)).length,
    failedFrames
  }
}

/** The output folder cannot take a frame: the job cannot go on. */
export class OutputWriteError extends Error {
  override name = 'OutputWriteError'
}

export class OutputFolder {
  /** Frames written in this run, or being written. */
  private readonly taken = new Set<number>()
  /** Frames written, or found there on resume, as they were then. */
  private readonly vouched = new Map<number, { ino: number, size: number, mtimeMs: number }>()

  /** With a journal, each frame written is recorded in it (journal.ts). */
  constructor (readonly dir: string, private image: ExpectedImage,
    private readonly journal?: Journal) {}

  pathOf (frame: number): string {
    return join(this.dir, frameFileName(frame, this.image.format))
  }

  /**
   * Removes the temp files of frames a killed coordinator was receiving.
   * Call before the job starts: it would remove a running job's too.
   */
  async removeStaleTemps (): Promise<number> {
    const stale = (await readdir(this.dir)).filter(name => TEMP_NAME.test(name))
    await Promise.all(stale.map(async name => { await rm(join(this.dir, name), { force: true }) }))
    return stale.length
  }

  /**
   * The frames whose names are taken by something a frame cannot replace
   * (a folder): found before the job starts, not when its frame arrives.
   */
  async blocked (frames: readonly number[]): Promise<number[]> {
    const folders = new Set((await readdir(this.dir, { withFileTypes: true }))
      .filter(entry => entry.isDirectory()).map(entry => entry.name))
    if (folders.size === 0) return []
    return frames.filter(frame => folders.has(frameFileName(frame, this.image.format)))
  }

  /** The frames of `frames` whose file name is taken in the folder. */
  async present (frames: readonly number[]): Promise<number[]> {
    const found: number[] = []
    for (const frame of frames) {
      if (await stat(this.pathOf(frame)).then(() => true, () => false)) found.push(frame)
    }
    return found
  }

  /**
   * Frames found in the folder as the journal says before the job starts:
   * vouched for, like the frames written, until the audit at the end.
   */
  async vouchFor (frames: Iterable<number>): Promise<void> {
    for (const frame of frames) await this.fingerprint(frame)
  }

  /**
   * Which frames vouched for are still in the folder as they were, and
   * which someone removed or wrote over while the job ran: only the
   * first count as done. A stat each, no hashing: a job's frames can be
   * hundreds of gigabytes.
   */
  async audit (): Promise<FolderAudit> {
    const audit: FolderAudit = { intact: new Set(), gone: [], changed: [] }
    for (const [frame, was] of this.vouched) {
      const now = await stat(this.pathOf(frame)).catch(() => undefined)
      if (now === undefined || !now.isFile()) audit.gone.push(frame)
      else if (now.ino !== was.ino || now.size !== was.size || now.mtimeMs !== was.mtimeMs) audit.changed.push(frame)
      else audit.intact.add(frame)
    }
    return audit
  }

  private async fingerprint (frame: number): Promise<void> {
    const info = await stat(this.pathOf(frame)).catch(() => undefined)
    if (info !== undefined) this.vouched.set(frame, { ino: info.ino, size: info.size, mtimeMs: info.mtimeMs })
  }

  /**
   * Receives one frame's bytes from the stream and writes it atomically.
   * Call synchronously after unwrapping the stream from its framed reader.
   */
  async receive (stream: Stream, frame: number, size: number,
    sha256: Uint8Array): Promise<WriteResult> {
    const final = this.pathOf(frame)
    const temp = join(this.dir, `.${frameFileName(frame, this.image.format)}.${randomBytes(4).toString('hex')}.part`)
    try {
      // Made again if someone removed it: the frames still to come are
      // kept; those that went with it fail the job (audit()). Sync: the
      // stream's bytes must find receiveFile listening.
      try { mkdirSync(this.dir, { recursive: true }) } catch {}
      const got = await receiveFile(stream, temp, size)
      const problem = Buffer.compare(got.sha256, sha256) !== 0
        ? 'SHA-256 does not match the bytes received'
        : this.imageProblem(await readFile(temp))
      if (problem !== undefined || this.taken.has(frame)) {
        await rm(temp, { force: true })
        return problem !== undefined
          ? { ok: false, reason: problem }
          : { ok: false, reason: `frame ${frame} is already done`, duplicate: true }
      }
      // Checked and taken with no await between: a second copy cannot pass.
      this.taken.add(frame)
      try {
        await syncThenRename(temp, final).catch((err: Error) => {
          throw new OutputWriteError(`cannot write ${final}: ${err.message}`, { cause: err })
        })
        await this.journal?.append(frame, basename(final), size, sha256)
        await this.fingerprint(frame)
      } catch (err) {
        this.taken.delete(frame)
        throw err
      }
      return { ok: true, path: final }
    } catch (err) {
      await rm(temp, { force: true })
      if (err instanceof LocalWriteError) {
        throw new OutputWriteError(`cannot write into ${this.dir}: ${err.message}`, { cause: err })
      }
      throw err
    }
  }

  private imageProblem (bytes: Uint8Array): string | undefined {
    const check = verifyImage(bytes, this.image)
    if (!check.ok) return check.reason
    if (this.image.width === 0) {
      // A job of unknown frame size: the first good frame sets it for
      // every other frame, so a worker with other settings cannot mix in.
      this.image = { ...this.image, width: check.width, height: check.height }
    }
    return undefined
  }
}

/** The bytes reach the disk before the rename makes them a frame. */
async function syncThenRename (temp: string, final: string): Promise<void> {
  const handle = await open(temp, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, final)
}
