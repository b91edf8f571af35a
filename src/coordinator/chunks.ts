/**
 * A job's chunks as the coordinator keeps them, and the answers a claim
 * gets: the shapes src/coordinator/job-state.ts moves between states and
 * src/coordinator/scheduler.ts decides on.
 */
export type ChunkStatus = 'open' | 'leased' | 'done' | 'failed'

export interface ChunkFailureRecord {
  worker: string
  reason: string
  logTail: string[]
}

export interface Lease {
  worker: string
  expiresAt: number
  /** A second lease on a chunk its first holder is still rendering. */
  speculative: boolean
}

export interface Chunk {
  readonly id: number
  /** Shrinks only when the chunk's tail is cut off as a new chunk. */
  frames: readonly number[]
  readonly done: Set<number>
  status: ChunkStatus
  /** Empty unless leased; two while a speculative copy runs. */
  leases: Lease[]
  /** Every worker ever granted a lease on it: late words from one of
   * them (a log, a frame already done) are stale, not hostile. */
  readonly heldBy: Set<string>
  readonly failures: ChunkFailureRecord[]
}

/**
 * `stale`: the request came from a worker that no longer holds the chunk.
 * `released`: the claimer's old chunk, reopened even though nothing new
 * could be granted.
 */
export type Refusal = { ok: false, reason: string, stale?: boolean, released?: number, wait?: boolean }
export type Grant = {
  ok: true
  /** The chunk granted: the one claimed, or another when that was taken. */
  chunkId: number
  /** In the order to render them. */
  frames: number[]
  expiresAt: number
  speculative?: boolean
  /** The chunk this worker held before, reopened by this claim. */
  released?: number
} | Refusal
export type FrameCheck = { ok: true } | Refusal

/** How a grant is shaped: the coordinator's scheduling policy. */
export interface GrantPolicy {
  /** Grant another open chunk when the claimed one is not grantable. */
  redirect?: boolean
  /** The most frames to grant: an open chunk's tail beyond them is cut off. */
  size?: number
  /** With nothing open: which of these leased chunks to copy, if any. */
  speculate?: (candidates: Chunk[]) => Chunk | undefined
  /** Why this worker gets nothing now, though frames are open: others
   * will render them sooner. */
  holdBack?: string
}
