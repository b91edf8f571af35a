/**
 * A job's files on a worker. The worker fetches the job's manifest, then
 * each file it does not already hold (the cache is by content hash and
 * shared across jobs), and rebuilds the artist's layout in the job dir
 * with hard links into the cache: files beside the .blend keep their
 * relative places, files from elsewhere go under blendnet-external/, and
 * the path map tells the render script where each one went.
 *
 * Files are checked before every chunk: a file changed since it was
 * verified (by Blender, a script, another user) is hashed again, and one
 * that no longer matches its hash is tampering, which stops the worker.
 */
import { access, copyFile, link, mkdir, readFile, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { planJobLayout, type PathMap } from '../blender/dependencies.js'
import { logger } from '../common/log.js'
import { SHARED_FETCH_MIN_BYTES } from '../common/constants.js'
import { formatSize } from '../common/sizes.js'
import { fetchBlob, hashFile, hex } from '../net/fetch.js'
import type { SwarmNode } from '../net/node.js'
import { pieceListOf } from '../net/pieces.js'
import { TransferError } from '../net/streams.js'
import { JobManifestCodec, type BlobRef, type ManifestFile } from '../net/wire.js'
import { FileSharing } from './file-sharing.js'
import type { WorkDir } from './work-dir.js'

const log = logger('worker:files')

export interface PreparedJob {
  /** The .blend in the job dir, to hand to Blender. */
  blendPath: string
  pathMap: PathMap
  /** Every file placed in the job dir, with the hash it must keep. */
  placed: Array<{ path: string, sha256: Uint8Array }>
}

/** The job's files are more than this worker takes. */
export class JobTooLargeError extends Error {
  override name = 'JobTooLargeError'
}

/** A job file no longer holds what its hash says: someone changed it. */
export class JobFileTamperedError extends Error {
  override name = 'JobFileTamperedError'
}

export class JobFiles {
  private readonly fetches = new Map<string, Promise<string>>()
  private readonly prepared = new Map<string, Promise<PreparedJob>>()
  /** Bytes fetched from other peers since start, for logs and tests. */
  fetchedBytes = 0
  /** Size, inode and change time of each file when last verified. */
  private readonly signatures = new Map<string, string>()

  /** Pieces of job files, fetched from and served to other peers. */
  readonly sharing: FileSharing

  constructor (private readonly node: SwarmNode, private readonly workDir: WorkDir,
    private readonly maxJobBytes = Infinity) {
    this.sharing = new FileSharing(node, workDir)
  }

  /** Ends file fetches and serving: a stopping worker hands its chunk back at once. */
  async stop (): Promise<void> {
    await this.sharing.stop()
  }

  /**
   * The job's files in place, prepared once however many chunks ask.
   * Keyed by the coordinator, the job and the manifest's hash: another
   * peer announcing the same id cannot make a job render its files, and
   * two jobs of one scene each have their own folder (and Blender), so
   * that one ending removes nothing the other renders from.
   */
  async prepare (jobId: string, from: PeerId, manifestRef: BlobRef): Promise<PreparedJob> {
    const key = preparedKey(from.toString(), jobId, manifestRef)
    let pending = this.prepared.get(key)
    if (pending === undefined) {
      pending = this.build(jobId, from, manifestRef)
      this.prepared.set(key, pending)
      pending.catch(() => { this.prepared.delete(key) })
    }
    return pending
  }

  forget (coordinator: string, jobId: string, manifestRef: BlobRef): void {
    this.prepared.delete(preparedKey(coordinator, jobId, manifestRef))
    this.sharing.forgetJob(coordinator, jobId)
  }

  private async build (jobId: string, from: PeerId, manifestRef: BlobRef): Promise<PreparedJob> {
    const manifest = JobManifestCodec.decode(await readFile(await this.cached(from, manifestRef)))
    // The announcement's size was checked before claiming; the manifest
    // is what would be downloaded, and a coordinator may have lied.
    const total = manifest.files.reduce((sum, f) => sum + f.size, 0)
    if (total > this.maxJobBytes) {
      throw new JobTooLargeError(`the job's files are ${formatSize(total)}, more than this worker's limit of ${formatSize(this.maxJobBytes)}`)
    }
    const byPath = new Map(manifest.files.map(f => [f.path, f]))
    const before = this.fetchedBytes
    await this.sharing.start()
    this.sharing.addJob(from.toString(), jobId, manifest.files)
    for (const file of manifest.files) {
      const shared = pieceListOf(file) !== undefined && file.size >= SHARED_FETCH_MIN_BYTES
      await this.cached(from, refOf(file), !shared
        ? undefined
        : async (dest) => { await this.fetchInPieces(from, jobId, file, dest) })
      this.sharing.holdComplete(file)
    }
    log.info('job files ready', {
      job: jobId, files: manifest.files.length, fetched: this.fetchedBytes - before
    })

    const jobDir = join(this.workDir.jobDir(from.toString(), jobId), `files-${hex(manifestRef.sha256).slice(0, 16)}`)
    await rm(jobDir, { recursive: true, force: true })
    const layout = planJobLayout(manifest.blendPath, manifest.dependencies, jobDir)
    const placed: PreparedJob['placed'] = []
    for (const { from: source, to } of layout.copies) {
      const file = byPath.get(source)
      if (file === undefined) continue
      await place(this.workDir.blobPath(hex(file.sha256)), to)
      placed.push({ path: to, sha256: file.sha256 })
    }
    const prepared = { blendPath: layout.blendPath, pathMap: layout.pathMap, placed }
    await this.verify(prepared)
    return prepared
  }

  /**
   * Throws JobFileTamperedError when a file of the job no longer matches
   * its hash. Only files whose size, inode or change time moved since
   * their last check are hashed again, so this is cheap per chunk.
   */
  async verify (job: PreparedJob): Promise<void> {
    for (const { path, sha256 } of job.placed) {
      const now = await signatureOf(path)
      if (now !== undefined && now === this.signatures.get(path)) continue
      const actual = now === undefined ? undefined : await hashFile(path)
      if (actual === undefined || Buffer.compare(actual, sha256) !== 0) {
        throw new JobFileTamperedError(`job file ${path} ${actual === undefined ? 'is gone' : 'no longer matches its SHA-256'}`)
      }
      this.signatures.set(path, now as string)
    }
  }

  /**
   * From the swarm, in verified pieces; if that stalls (no piece for
   * PIECE_STALL_MS), the whole file once more from the coordinator, over
   * the plain fetch protocol, verified by its hash.
   */
  private async fetchInPieces (from: PeerId, jobId: string, file: ManifestFile, dest: string): Promise<void> {
    try {
      await this.sharing.fetch(from, jobId, file)
    } catch (err) {
      if (!(err instanceof TransferError) || this.sharing.stopped) throw err
      log.warn('fetching in pieces stalled; fetching the whole file from the coordinator', {
        job: jobId, hash: hex(file.sha256).slice(0, 16), err: err.message
      })
      await fetchBlob(this.node, from, refOf(file), dest)
    }
  }

  /**
   * The file with this hash in the cache, fetched once if missing. A
   * cached file that changed since it was verified is hashed again and,
   * if it no longer matches, fetched anew.
   */
  private async cached (from: PeerId, ref: BlobRef,
    download = async (dest: string): Promise<void> => { await fetchBlob(this.node, from, ref, dest) }): Promise<string> {
    const hash = hex(ref.sha256)
    const path = this.workDir.blobPath(hash)
    if (await exists(path)) {
      const now = await signatureOf(path)
      if (now !== undefined && now === this.signatures.get(path)) return path
      if (now !== undefined && Buffer.compare(await hashFile(path), ref.sha256) === 0) {
        this.signatures.set(path, now)
        return path
      }
      log.warn('cached file does not match its hash, fetching it again', { hash })
      await rm(path, { force: true })
    }
    let pending = this.fetches.get(hash)
    if (pending === undefined) {
      pending = download(path).then(async () => {
        this.fetchedBytes += ref.size
        const signature = await signatureOf(path)
        if (signature !== undefined) this.signatures.set(path, signature)
        return path
      })
      this.fetches.set(hash, pending)
      pending.finally(() => this.fetches.delete(hash)).catch(() => {})
    }
    return pending
  }
}

function refOf (file: ManifestFile): BlobRef {
  return { sha256: file.sha256, size: file.size, name: file.path }
}

/** A hard link into the cache; a copy where links cannot be made. */
async function place (cached: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true })
  await link(cached, to).catch(async () => { await copyFile(cached, to) })
}

/** What changes when a file's content can have changed; ctime cannot be
 * set back by an unprivileged writer. */
async function signatureOf (path: string): Promise<string | undefined> {
  const st = await stat(path).catch(() => undefined)
  return st === undefined ? undefined : `${st.size}:${st.ino}:${st.ctimeMs}`
}

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}

function preparedKey (coordinator: string, jobId: string, manifestRef: BlobRef): string {
  return `${coordinator}/${jobId}/${hex(manifestRef.sha256)}`
}
