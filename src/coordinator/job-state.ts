/**
 * The job state machine, kept apart from the network so every transition
 * can be tested by name. A job is a list of chunks; each chunk moves
 *
 *   open ──grant──▶ leased ──last frame accepted──▶ done
 *     ▲               │
 *     └─every lease lapsed, released or failed─┤
 *                     └─failed by MAX_CHUNK_FAILURES workers, or by every
 *                       worker present──▶ failed
 *
 * Chunks are cut to size when granted: a grant may take only the first
 * frames of an open chunk, and the rest becomes a new open chunk. When no
 * chunk is open, an idle worker may get a second, speculative lease on a
 * chunk that another worker is rendering: it renders the chunk's missing
 * frames from the last backwards, the first verified copy of each frame
 * wins, and whoever then delivers a frame already done learns that the
 * chunk is no longer theirs (a stale refusal) and stops.
 *
 * A worker that failed MAX_WORKER_FAILURES chunks of the job is benched:
 * it gets no more grants, and counts as having tried every chunk.
 *
 * A frame accepted from a lease holder stays done even if its chunk is
 * reopened later; a reopened chunk offers only its missing frames. A
 * resumed job starts with the frames already in the output folder done:
 * such chunks are done at once or offer only their missing frames.
 */
import { MAX_CHUNK_FAILURES, MAX_WORKER_FAILURES } from '../common/constants.js'
import type { Chunk, ChunkStatus, FrameCheck, Grant, GrantPolicy, Refusal } from './chunks.js'

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
  /** Kept as they change, so that a claim costs the same in a job of a
   * million frames: open chunks in the order they opened, leased ones, and
   * the chunk each worker holds. */
  private readonly open = new Set<number>()
  private readonly leased = new Set<number>()
  private readonly holding = new Map<string, number>()
  private openFrames = 0
  private readonly totalFrames: number
  private doneFrames = 0
  /** Chunks done or failed for good. */
  private settled = 0
  /** Frames that were done before this run started. */
  readonly alreadyDone: number

  constructor (chunkFrames: number[][], opts: JobStateOptions) {
    this.chunks = chunkFrames.map((frames, id) => ({
      id, frames, done: new Set<number>(), status: 'open', leases: [], heldBy: new Set<string>(), failures: []
    }))
    for (const chunk of this.chunks) this.setStatus(chunk, 'open')
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

  /** Open chunks in the order they opened; the first `limit` only, if given. */
  openChunks (limit = Infinity): Chunk[] {
    const out: Chunk[] = []
    for (const id of this.open) {
      if (out.length >= limit) break
      out.push(this.chunks[id])
    }
    return out
  }

  leasedChunks (): Chunk[] {
    return [...this.leased].map(id => this.chunks[id])
  }

  /** Frames of a chunk not yet accepted. */
  remaining (chunk: Chunk): number[] {
    return chunk.frames.filter(f => !chunk.done.has(f))
  }

  /** Each worker holding a chunk, and the frames of it still missing. */
  *framesLeftByHolder (): Iterable<[string, number]> {
    for (const [worker, id] of this.holding) {
      const chunk = this.chunks[id]
      yield [worker, chunk.frames.length - chunk.done.size]
    }
  }

  /** Does this worker hold a lease on this chunk? */
  holds (chunk: Chunk | undefined, worker: string): boolean {
    return chunk?.status === 'leased' && chunk.leases.some(l => l.worker === worker)
  }

  /** open → leased: the first valid claim for a chunk wins. */
  grant (id: number, worker: string, now: number, policy: GrantPolicy = {}): Grant {
    if (this.chunks[id] === undefined && policy.redirect !== true) return refuse(`no chunk ${id} in this job`)
    if (this.benched(worker)) {
      return refuse(`worker failed ${this.maxWorkerFailures} chunks of this job and takes no more of it`)
    }
    // A worker renders one chunk at a time and claims only when idle: a
    // claim from a holder means it gave its chunk up (it was restarted),
    // so that chunk reopens now rather than after its lease.
    const held = this.leaseOf(worker)
    if (held !== undefined) this.release(held.id, worker)
    const released = held === undefined ? {} : { released: held.id }
    if (policy.holdBack !== undefined) return { ...refuse(policy.holdBack), wait: true, ...released }

    const asked = this.chunks[id]
    const why = asked === undefined ? `no chunk ${id} in this job` : this.whyNot(asked, worker)
    let chunk = why === undefined ? asked : undefined
    if (chunk === undefined && policy.redirect === true) chunk = this.firstGrantable(worker)
    if (chunk === undefined && policy.redirect === true && policy.speculate !== undefined) {
      const copy = policy.speculate(this.speculationCandidates(worker))
      if (copy !== undefined) return { ...this.lease(copy, worker, now, true), ...released }
    }
    if (chunk === undefined) {
      // Redirected and still nothing: the claimer's view is stale; the
      // next announcement will say what is open.
      if (policy.redirect === true) return { ...refuse('nothing open for this worker, nor worth copying'), wait: true, ...released }
      return { ...refuse(why ?? `chunk ${id} is not open`), ...released }
    }
    if (policy.size !== undefined) this.cut(chunk, policy.size)
    return { ...this.lease(chunk, worker, now, false), ...released }
  }

  /** leased → leased: a holder extends its lease. */
  renew (id: number, worker: string, now: number): Grant {
    const chunk = this.chunks[id]
    const lease = this.holds(chunk, worker) ? chunk.leases.find(l => l.worker === worker) : undefined
    if (lease === undefined) return refuse(`worker does not hold chunk ${id}`)
    lease.expiresAt = now + this.leaseMs
    return { ok: true, chunkId: id, frames: this.remaining(chunk), expiresAt: lease.expiresAt }
  }

  /** May this worker deliver this frame? Checked before any byte is read. */
  checkFrame (id: number, frame: number, worker: string): FrameCheck {
    const chunk = this.chunks[id]
    if (chunk === undefined) return refuse(`no chunk ${id} in this job`)
    if (!this.holds(chunk, worker)) {
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
    if (chunk.status === 'open') this.openFrames--
    if (chunk.done.size === chunk.frames.length) {
      this.dropLeases(chunk)
      this.setStatus(chunk, 'done')
      this.settled++
    }
  }

  /**
   * A holder could not render the chunk. It reopens when no other lease
   * remains, and fails for good after maxFailures different workers, or
   * when every worker present has failed it, so a scene that cannot
   * render is not retried forever.
   */
  fail (id: number, worker: string, reason: string, logTail: string[],
    presentWorkers: ReadonlySet<string>): Chunk | undefined {
    const chunk = this.chunks[id]
    if (!this.holds(chunk, worker)) return undefined
    chunk.failures.push({ worker, reason, logTail })
    this.failuresOf.set(worker, (this.failuresOf.get(worker) ?? 0) + 1)
    this.dropLease(chunk, worker)
    this.failUnrenderable(chunk, presentWorkers)
    return chunk
  }

  /** A holder gives the chunk back unrendered. */
  release (id: number, worker: string): Chunk | undefined {
    const chunk = this.chunks[id]
    if (!this.holds(chunk, worker)) return undefined
    this.dropLease(chunk, worker)
    return chunk
  }

  /** open → failed for every chunk no worker present may still try. */
  failUnclaimable (presentWorkers: ReadonlySet<string>): Chunk[] {
    return this.openChunks().filter(c => this.failUnrenderable(c, presentWorkers))
  }

  /** Drops every lease that lapsed before `now`; says whose and on what. */
  expireLeases (now: number): Array<{ chunk: Chunk, worker: string }> {
    const lapsed: Array<{ chunk: Chunk, worker: string }> = []
    for (const chunk of this.leasedChunks()) {
      for (const lease of chunk.leases.filter(l => l.expiresAt <= now)) {
        lapsed.push({ chunk, worker: lease.worker })
        this.dropLease(chunk, lease.worker)
      }
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
    const id = this.holding.get(worker)
    return id === undefined ? undefined : this.chunks[id]
  }

  /** Frames in open chunks, and chunks leased: what is left to hand out. */
  backlog (): { openFrames: number, openChunks: number, leasedChunks: number } {
    return { openFrames: this.openFrames, openChunks: this.open.size, leasedChunks: this.leased.size }
  }

  /** What an announcement says of how the job stands. */
  announced (): { openCount: number, leasedCount: number, framesTotal: number, framesDone: number } {
    const { total, done } = this.counts()
    return { openCount: this.open.size, leasedCount: this.leased.size, framesTotal: total, framesDone: done }
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

  // ---------------------------------------------------------- internals --

  private whyNot (chunk: Chunk, worker: string): string | undefined {
    if (chunk.status !== 'open') return `chunk ${chunk.id} is ${chunk.status}`
    if (chunk.failures.some(f => f.worker === worker)) return `worker already failed chunk ${chunk.id}`
    return undefined
  }

  private firstGrantable (worker: string): Chunk | undefined {
    for (const id of this.open) {
      if (this.whyNot(this.chunks[id], worker) === undefined) return this.chunks[id]
    }
    return undefined
  }

  /** Leased chunks this worker could copy: held by one other worker only. */
  private speculationCandidates (worker: string): Chunk[] {
    return this.leasedChunks().filter(c => c.leases.length === 1 &&
      c.leases[0].worker !== worker && !c.failures.some(f => f.worker === worker) &&
      this.remaining(c).length > 0)
  }

  /** Cuts an open chunk's missing frames after the first `size` into a new open chunk. */
  private cut (chunk: Chunk, size: number): void {
    const missing = this.remaining(chunk)
    if (size < 1 || missing.length <= size) return
    const tail = new Set(missing.slice(size))
    chunk.frames = chunk.frames.filter(f => !tail.has(f))
    const rest: Chunk = {
      id: this.chunks.length, frames: [...tail], done: new Set(), status: 'open', leases: [], heldBy: new Set(), failures: []
    }
    this.chunks.push(rest)
    this.openFrames -= tail.size
    this.setStatus(rest, 'open')
  }

  private lease (chunk: Chunk, worker: string, now: number, speculative: boolean): Grant {
    const lease = { worker, expiresAt: now + this.leaseMs, speculative }
    chunk.leases.push(lease)
    chunk.heldBy.add(worker)
    this.holding.set(worker, chunk.id)
    this.setStatus(chunk, 'leased')
    const missing = this.remaining(chunk)
    return speculative
      ? { ok: true, chunkId: chunk.id, frames: missing.reverse(), expiresAt: lease.expiresAt, speculative }
      : { ok: true, chunkId: chunk.id, frames: missing, expiresAt: lease.expiresAt }
  }

  private dropLease (chunk: Chunk, worker: string): void {
    chunk.leases = chunk.leases.filter(l => l.worker !== worker)
    if (this.holding.get(worker) === chunk.id) this.holding.delete(worker)
    if (chunk.leases.length === 0 && chunk.status === 'leased') this.setStatus(chunk, 'open')
  }

  private dropLeases (chunk: Chunk): void {
    for (const lease of chunk.leases) {
      if (this.holding.get(lease.worker) === chunk.id) this.holding.delete(lease.worker)
    }
    chunk.leases = []
  }

  private setStatus (chunk: Chunk, status: ChunkStatus): void {
    const missing = chunk.frames.length - chunk.done.size
    if (this.open.has(chunk.id)) this.openFrames -= missing
    if (status === 'open') this.openFrames += missing
    chunk.status = status
    if (status === 'open') this.open.add(chunk.id); else this.open.delete(chunk.id)
    if (status === 'leased') this.leased.add(chunk.id); else this.leased.delete(chunk.id)
  }

  private failUnrenderable (chunk: Chunk,
    presentWorkers: ReadonlySet<string>): boolean {
    if (chunk.status !== 'open' || chunk.failures.length === 0) return false
    const failedBy = new Set(chunk.failures.map(f => f.worker))
    const untried = [...presentWorkers].filter(w => !failedBy.has(w) && !this.benched(w))
    if (failedBy.size < this.maxFailures && untried.length > 0) return false
    this.setStatus(chunk, 'failed')
    this.settled++
    return true
  }
}

function refuse (reason: string): Refusal {
  return { ok: false, reason }
}
