/**
 * A worker's work dir:
 *
 *   peer.key                  the worker's libp2p key (mode 0600), used
 *                             when --work-dir is given (see net/identity.ts)
 *   worker.lock               PID of the worker using this dir
 *   blobs/<sha256>            job files by content hash, shared across jobs
 *   jobs/<coordinator>/<job>/ one job, by the coordinator's peer ID (so
 *                             one peer cannot touch another's jobs):
 *     files-<manifest>/       the job's layout, hard links into blobs/
 *     chunk-<id>-<pid>-<n>/   one Blender run: its frames and blender.log
 *   jobs/<coordinator>/standby-<pid>-<n>/
 *                             a standby Blender's own folder, made when
 *                             the coordinator connected (blender/standby.ts)
 *
 * One worker per work dir: two would share a peer ID and a cache.
 */
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileProblem, UsageError } from '../common/errors.js'
import { isAlive } from '../common/pid.js'

export class WorkDir {
  private attempts = 0

  private constructor (readonly root: string) {}

  static async open (root: string): Promise<WorkDir> {
    try {
      await mkdir(join(root, 'blobs'), { recursive: true })
      await mkdir(join(root, 'jobs'), { recursive: true })
    } catch (err) {
      throw new UsageError(`cannot use --work-dir ${root}: ${fileProblem(err)}`)
    }
    const dir = new WorkDir(root)
    await dir.lock()
    // A worker that was killed could not wipe its files: do it now. Its
    // chunks were never acknowledged, and its jobs' files are not ours to
    // keep (a worker holds job files only while it works on them).
    await dir.removeWorkFiles()
    await mkdir(join(root, 'blobs'))
    await mkdir(join(root, 'jobs'))
    return dir
  }

  static keyPath (root: string): string {
    return join(root, 'peer.key')
  }

  blobPath (sha256Hex: string): string {
    return join(this.root, 'blobs', sha256Hex)
  }

  jobDir (coordinator: string, jobId: string): string {
    return join(this.coordinatorDir(coordinator), safePart(jobId))
  }

  /** Every job of one submitting peer, and its standby Blender's folder. */
  coordinatorDir (coordinator: string): string {
    return join(this.root, 'jobs', safePart(coordinator))
  }

  /** A fresh folder name for one Blender run of a chunk. */
  chunkDir (coordinator: string, jobId: string, chunkId: number): string {
    this.attempts++
    return join(this.jobDir(coordinator, jobId), `chunk-${chunkId}-${process.pid}-${this.attempts}`)
  }

  async removeJob (coordinator: string, jobId: string): Promise<void> {
    const dir = this.jobDir(coordinator, jobId)
    await rm(dir, { recursive: true, force: true })
    // The coordinator's folder too once it is empty: a submit under a
    // one-off key each time would leave one per run. Another job of the
    // same coordinator may be filling it meanwhile: then it stays.
    await rmdir(dirname(dir)).catch(() => {})
  }

  /** Everything but the key and the lock: what a stopping worker wipes. */
  async removeWorkFiles (): Promise<void> {
    await rm(join(this.root, 'jobs'), { recursive: true, force: true })
    await rm(join(this.root, 'blobs'), { recursive: true, force: true })
  }

  async release (): Promise<void> {
    await rm(join(this.root, 'worker.lock'), { force: true })
  }

  private async lock (): Promise<void> {
    const path = join(this.root, 'worker.lock')
    try {
      const pid = Number(await readFile(path, 'utf8'))
      if (pid !== process.pid && isAlive(pid)) {
        throw new UsageError(`--work-dir ${this.root} is in use by worker process ${pid}; give each worker its own --work-dir`)
      }
    } catch (err) {
      if (err instanceof UsageError) throw err
    }
    await writeFile(path, String(process.pid))
  }
}

/**
 * Wire decoding already refuses other ids; this is the last guard before
 * a path is built from a peer's words.
 */
function safePart (part: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) throw new Error(`unsafe path part ${JSON.stringify(part)}`)
  return part
}
