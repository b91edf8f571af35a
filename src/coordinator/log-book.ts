/**
 * Which chunk logs the coordinator has and which it is still owed.
 *
 * A worker sends a chunk's Blender log beside the chunk's last frame, and
 * the job's end waits for a log still owed by a worker that is connected,
 * so a whole chunk always arrives with its log. A chunk split by a speculative
 * copy is different: each worker delivers some of its frames early, the
 * job ends with the last of them, and only then do the workers stop and
 * send the logs of what they delivered. The coordinator waits a moment for
 * those before it goes, so every frame written keeps its Blender log.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { logger } from '../common/log.js'
import type { SwarmNode } from '../net/node.js'

const log = logger('coordinator')

/** How long a finished job waits for the logs of frames it was sent. */
const LOG_GRACE_MS = 3000
const POLL_MS = 25

export class ChunkLogBook {
  /** `chunk/worker` of each log taken in, kept or not: one each. */
  private readonly taken = new Set<string>()
  /** `chunk/worker` whose frames were written without their log. */
  private readonly owed = new Set<string>()
  private receiving = 0

  /** A frame of `chunk` from `worker` was written. */
  frameWritten (chunk: number, worker: string): void {
    const key = `${chunk}/${worker}`
    if (!this.taken.has(key)) this.owed.add(key)
  }

  /** False when this worker already sent a log of this chunk. */
  take (chunk: number, worker: string): boolean {
    const key = `${chunk}/${worker}`
    if (this.taken.has(key)) return false
    this.taken.add(key)
    this.owed.delete(key)
    this.receiving++
    return true
  }

  /** The log taken in is written or refused. */
  settled (): void {
    this.receiving--
  }

  /**
   * Resolves when no log is being received and none is owed by a worker
   * still connected, or after `graceMs`: a worker gone cannot send its log,
   * and one that never does must not hold the artist's command for long.
   */
  async collect (node: Pick<SwarmNode, 'getConnections'>, jobId: string,
    graceMs = LOG_GRACE_MS): Promise<void> {
    const connected = (worker: string): boolean =>
      node.getConnections().some(c => c.remotePeer.toString() === worker && c.status === 'open')
    const waiting = (): boolean => this.receiving > 0 ||
      [...this.owed].some(key => connected(key.slice(key.indexOf('/') + 1)))
    const deadline = Date.now() + graceMs
    while (waiting() && Date.now() < deadline) await sleep(POLL_MS)
    if (this.owed.size > 0) {
      log.warn('frames written without their Blender log', { job: jobId, missing: [...this.owed].join(' ') })
    }
  }
}
