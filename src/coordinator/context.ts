import type { WorkerCapabilities } from '../job/requirements.js'
import type { JobSpec } from '../job/spec.js'
import type { SwarmNode } from '../net/node.js'
import type { ChunkProgressReport } from './events.js'
import type { ChunkLogBook } from './log-book.js'
import type { JobState } from './job-state.js'
import type { OutputFolder } from './output.js'
import type { Scheduler } from './scheduler.js'

/** What the protocol handlers of one job share with its coordinator. */
export interface CoordinatorContext {
  node: SwarmNode
  job: JobSpec
  state: JobState
  /** Sizes grants by each worker's measured speed. */
  scheduler: Scheduler
  output: OutputFolder
  leaseMs: number
  /** Nonces of claims accepted, with when each claim was signed. */
  seenNonces: Map<string, number>
  /** Chunk logs taken in and still owed: one per worker and chunk. */
  logs: ChunkLogBook
  presentWorkers: () => ReadonlySet<string>
  /** False when the peer opens streams faster than it may (rate limit). */
  admit: (peer: string) => boolean
  /** The worker is on the allow-list, or there is none. */
  mayClaim: (worker: string) => boolean
  markPresent: (worker: string, capabilities: WorkerCapabilities) => void
  /** Counts and logs a message refused as malformed or hostile. */
  reject: (peer: string, kind: string, reason: string) => void
  onGranted: (chunk: number, worker: string, frames: number[], speculative: boolean) => void
  onFrameDone: (chunk: number, frame: number, worker: string, path: string) => void
  onFrameRejected: (frame: number, worker: string, reason: string) => void
  onChunkFailed: (chunk: number, worker: string, reason: string, final: boolean) => void
  onChunkReleased: (chunk: number, worker: string) => void
  /** Blender's progress on a leased chunk, from its lease holder. */
  onChunkProgress: (chunk: number, worker: string, progress: ChunkProgressReport) => void
  /** The output folder failed (full, unwritable): the job stops. */
  onOutputFailed: (reason: string) => void
}
