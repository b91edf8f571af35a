/**
 * The job state machine, kept apart from the network so every transition
 * can be tested by name. A job is a list of chunks; each chunk moves
 *
 *   open ──grant──▶ leased ──last frame accepted──▶ done
 *     ▲               │
 *     └─lease lapsed──┤
 *     └─failed, others may still try──┘
 *                     └─failed by MAX_CHUNK_FAILURES workers, or by every
 *                       worker present──▶ failed
 *
 * A worker that failed MAX_WORKER_FAILURES chunks of the job is benched:
 * it gets no more grants, and counts as having tried every chunk.
 *
 * A frame accepted from the lease holder stays done even if its chunk is
 * reopened later; a reopened chunk offers only its missing frames. A
 * resumed job starts with the frames already in the output folder done:
 * such chunks are done at once or offer only their missing frames.
 */
import { MAX_CHUNK_FAILURES, MAX_WORKER_FAILURES } from '../common/constants.js'

export type ChunkStatus = 'open' | 'leased' | 'done' | 'failed'

export interface ChunkFailureRecord {
  worker: string
  reason: string
  logTail: string[]
}

export interface Chunk {
  readonly id: number
  readonly frames: readonly number[]
  readonly done: Set<number>
  status: ChunkStatus
  lease?: { worker: string, expiresAt: number }
  readonly failures: ChunkFailureRecord[]
}

/** `stale`: the request came from a worker that no longer holds the chunk. */
export type Refusal = { ok: false, reason: string, stale?: boolean }
export type Grant = {
  ok: true
  frames: number[]
  expiresAt: number
  /** The chunk this worker held before, reopened by this claim. */
  released?: number
} | Refusal
export type FrameCheck = { ok: true } | Refusal

export interface JobStateOptions {
  leaseMs: number
  maxFailures?: number
  /** Chunks a worker may fail before it takes no more of this job. */
  maxWorkerFailures?: number
  /** Frames already in the output folder, checked against the journal. */
  alreadyDone?: ReadonlySet<number>
}

export class JobState {
  readonly chunks: Chunk[]
  private readonly leaseMs: number
  private readonly maxFailures: number
  private readonly maxWorkerFailures: number
  /** Chunks each worker failed, for benching a worker that keeps failing. */
  private readonly failuresOf = new Map<string, number>()
  /** Kept as they change: a job can have a million frames. */
  private readonly totalFrames: number
  private doneFrames = 0
  /** Chunks done or failed for good. */
  private settled = 0
  /** Frames that were done before this run started. */
  readonly alreadyDone: number

  constructor (chunkFrames: number[][], opts: JobStateOptions) {
    this.chunks = chunkFrames.map((frames, id) => ({
      id, frames, done: new Set<number>(), status: 'open', failures: []
    }))
    this.leaseMs = opts.leaseMs
    this.maxFailures = opts.maxFailures ?? MAX_CHUNK_FAILURES
    this.maxWorkerFailures = opts.maxWorkerFailures ?? MAX_WORKER_FAILURES
    this.totalFrames = chunkFrames.reduce((n, c) => n + c.length, 0)
    const before = opts.alreadyDone ?? new Set<number>()
    for (const chunk of this.chunks) {
      for (const frame of chunk.frames.filter(f => before.has(f))) this.frameDone(chunk.id, frame)
    }
    this.alreadyDone = this.doneFrames
  }

  /** Frames accepted so far, of all: cheap enough for every frame. */
  progress (): { done: number, total: number } {
    return { done: this.doneFrames, total: this.totalFrames }
  }

  chunk (id: number): Chunk | undefined {
    return this.chunks[id]
  }

  openChunks (): Chunk[] {
    return this.chunks.filter(c => c.status === 'open')
  }

  /** Frames of a chunk not yet accepted. */
  remaining (chunk: Chunk): number[] {
    return chunk.frames.filter(f => !chunk.done.has(f))
  }

  /** open → leased: the first valid claim wins. */
  grant (id: number, worker: string, now: number): Grant {
    const chunk = this.chunks[id]
    if (chunk === undefined) return refuse(`no chunk ${id} in this job`)
    if (chunk.status !== 'open') return refuse(`chunk ${id} is ${chunk.status}`)
    if (chunk.failures.some(f => f.worker === worker)) {
      return refuse(`worker already failed chunk ${id}`)
    }
    if (this.benched(worker)) {
      return refuse(`worker failed ${this.maxWorkerFailures} chunks of this job and takes no more of it`)
    }
    // A worker renders one chunk at a time and claims only when idle: a
    // claim from a holder means it gave its chunk up (it was restarted),
    // so that chunk reopens now rather than after its lease.
    const held = this.leaseOf(worker)
    if (held !== undefined) this.release(held.id, worker)

    chunk.status = 'leased'
    chunk.lease = { worker, expiresAt: now + this.leaseMs }
    const grant = { ok: true as const, frames: this.remaining(chunk), expiresAt: chunk.lease.expiresAt }
    return held === undefined ? grant : { ...grant, released: held.id }
  }

  /** leased → leased: the holder extends its lease. */
  renew (id: number, worker: string, now: number): Grant {
    const chunk = this.chunks[id]
    if (chunk?.status !== 'leased' || chunk.lease?.worker !== worker) {
      return refuse(`worker does not hold chunk ${id}`)
    }
    chunk.lease.expiresAt = now + this.leaseMs
    return { ok: true, frames: this.remaining(chunk), expiresAt: chunk.lease.expiresAt }
  }

  /** May this worker deliver this frame? Checked before any byte is read. */
  checkFrame (id: number, frame: number, worker: string): FrameCheck {
    const chunk = this.chunks[id]
    if (chunk === undefined) return refuse(`no chunk ${id} in this job`)
    if (chunk.status !== 'leased' || chunk.lease?.worker !== worker) {
      return { ...refuse(`worker does not hold chunk ${id}`), stale: true }
    }
    if (!chunk.frames.includes(frame)) return refuse(`frame ${frame} is not in chunk ${id}`)
    if (chunk.done.has(frame)) return { ...refuse(`frame ${frame} is already done`), stale: true }
    return { ok: true }
  }

  /** A verified frame was written; leased → done with the chunk's last one. */
  frameDone (id: number, frame: number): void {
    const chunk = this.chunks[id]
    if (chunk.done.has(frame)) return
    chunk.done.add(frame)
    this.doneFrames++
    if (chunk.done.size === chunk.frames.length) {
      chunk.status = 'done'
      chunk.lease = undefined
      this.settled++
    }
  }

  /**
   * leased → open or failed: the holder could not render the chunk. It
   * fails for good after maxFailures different workers, or when every
   * worker present has failed it, so a scene that cannot render is not
   * retried forever.
   */
  fail (id: number, worker: string, reason: string, logTail: string[],
    presentWorkers: ReadonlySet<string>): Chunk | undefined {
    const chunk = this.chunks[id]
    if (chunk?.status !== 'leased' || chunk.lease?.worker !== worker) return undefined
    chunk.failures.push({ worker, reason, logTail })
    this.failuresOf.set(worker, (this.failuresOf.get(worker) ?? 0) + 1)
    chunk.lease = undefined
    chunk.status = 'open'
    this.failUnrenderable(chunk, presentWorkers)
    return chunk
  }

  /** leased → open: the holder gives the chunk back unrendered. */
  release (id: number, worker: string): Chunk | undefined {
    const chunk = this.chunks[id]
    if (chunk?.status !== 'leased' || chunk.lease?.worker !== worker) return undefined
    chunk.status = 'open'
    chunk.lease = undefined
    return chunk
  }

  /** open → failed for every chunk no worker present may still try. */
  failUnclaimable (presentWorkers: ReadonlySet<string>): Chunk[] {
    return this.openChunks().filter(c => this.failUnrenderable(c, presentWorkers))
  }

  /** leased → open for every lease that lapsed before `now`. */
  expireLeases (now: number): Chunk[] {
    const lapsed = this.chunks.filter(c =>
      c.status === 'leased' && c.lease !== undefined && c.lease.expiresAt <= now)
    for (const chunk of lapsed) {
      chunk.status = 'open'
      chunk.lease = undefined
    }
    return lapsed
  }

  /** This worker failed too many chunks of the job to get another. */
  benched (worker: string): boolean {
    return (this.failuresOf.get(worker) ?? 0) >= this.maxWorkerFailures
  }

  /**
   * Workers present but benched, every one of them: the job cannot go on
   * with the swarm as it is.
   */
  noEligibleWorker (presentWorkers: ReadonlySet<string>): boolean {
    return presentWorkers.size > 0 && [...presentWorkers].every(w => this.benched(w))
  }

  leaseOf (worker: string): Chunk | undefined {
    return this.chunks.find(c => c.status === 'leased' && c.lease?.worker === worker)
  }

  isFinished (): boolean {
    return this.settled === this.chunks.length
  }

  succeeded (): boolean {
    return this.chunks.every(c => c.status === 'done')
  }

  counts (): { total: number, done: number, failed: number } {
    let total = 0
    let done = 0
    let failed = 0
    for (const chunk of this.chunks) {
      total += chunk.frames.length
      done += chunk.done.size
      if (chunk.status === 'failed') failed += chunk.frames.length - chunk.done.size
    }
    return { total, done, failed }
  }

  private failUnrenderable (chunk: Chunk,
    presentWorkers: ReadonlySet<string>): boolean {
    if (chunk.status !== 'open' || chunk.failures.length === 0) return false
    const failedBy = new Set(chunk.failures.map(f => f.worker))
    const untried = [...presentWorkers].filter(w => !failedBy.has(w) && !this.benched(w))
    if (failedBy.size < this.maxFailures && untried.length > 0) return false
    chunk.status = 'failed'
    this.settled++
    return true
  }
}

function refuse (reason: string): Refusal {
  return { ok: false, reason }
}
