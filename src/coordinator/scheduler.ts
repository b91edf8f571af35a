/**
 * How much work each claim gets. The coordinator measures every worker's
 * time per frame from the frames it delivers, and sizes its next chunk to
 * take about the target time (`--chunk-time`): a worker's first chunk is a
 * single frame, and later ones follow its speed. Near the end of a job
 * chunks shrink to a share of what is left, weighted by speed, so that
 * every worker finishes about together; a worker whose next frame would
 * end after the job's busy workers could have rendered every open frame
 * gets nothing (it would only delay the end); once nothing is open, an idle
 * worker copies the chunk expected to finish last, if it would finish a
 * frame of it sooner than the holder finishes the whole, or a chunk whose
 * holder is long overdue by its own pace (stuck, or slowed down).
 *
 * A job planned with a fixed chunk size (`--chunk-size`) keeps its chunks
 * whole; only holding slow workers back and the end-game copies apply
 * to it.
 */
import type { Chunk, GrantPolicy } from './chunks.js'

export interface SchedulerOptions {
  /** Chunks as planned, never cut. */
  fixed: boolean
  /** How long a chunk should take once the worker's speed is known. */
  targetMs: number
  /** Copy a chunk only when its holder needs this many times longer than
   * the copier needs for one frame: a copy costs a frame's work. */
  speculationMargin?: number
}

interface WorkerPace {
  /** Smoothed time per frame, once a frame was delivered. */
  msPerFrame?: number
  /** The grant or frame that started the frame under way. */
  since: number
}

/** Weight of the newest sample in the smoothed time per frame. */
const SMOOTHING = 0.3
/** Near the end, a worker takes at most this part of its fair share. */
const TAIL_SHARE = 0.5
/** A holder this many times past its expected time counts as a straggler. */
const OVERDUE = 2

export class Scheduler {
  private readonly paces = new Map<string, WorkerPace>()
  private readonly margin: number

  constructor (private readonly opts: SchedulerOptions) {
    this.margin = opts.speculationMargin ?? 1
  }

  granted (worker: string, now: number): void {
    const pace = this.paces.get(worker)
    if (pace === undefined) this.paces.set(worker, { since: now }); else pace.since = now
  }

  frameAccepted (worker: string, now: number): void {
    const pace = this.paces.get(worker) ?? { since: now }
    const took = Math.max(1, now - pace.since)
    pace.msPerFrame = pace.msPerFrame === undefined ? took : pace.msPerFrame + SMOOTHING * (took - pace.msPerFrame)
    pace.since = now
    this.paces.set(worker, pace)
  }

  msPerFrame (worker: string): number | undefined {
    return this.paces.get(worker)?.msPerFrame
  }

  /** Workers whose speed is known: their smoothed ms per frame. */
  speeds (): Map<string, number> {
    const out = new Map<string, number>()
    for (const [worker, pace] of this.paces) if (pace.msPerFrame !== undefined) out.set(worker, pace.msPerFrame)
    return out
  }

  /**
   * The grant policy for one claim. `present`: workers present now;
   * `openFrames`: frames in open chunks; `busy`: each worker holding a
   * chunk, with the frames of it still missing.
   */
  policy (worker: string, present: ReadonlySet<string>, openFrames: number, now: number,
    busy: Iterable<[string, number]> = []): GrantPolicy {
    const slower = this.othersFinishSooner(worker, busy, openFrames, now)
    return {
      redirect: true,
      size: this.opts.fixed ? undefined : this.size(worker, present, openFrames),
      speculate: (candidates) => this.pickCopy(worker, candidates, now),
      holdBack: slower ? 'the job\'s busy workers will render the open frames sooner than this one' : undefined
    }
  }

  /**
   * Would the job's busy workers, each going on at its own pace once done
   * with its chunk, render every open frame before this worker could
   * render one? Then a frame granted to it would only end the job later.
   * Only workers holding a chunk count: an idle one may never claim.
   */
  private othersFinishSooner (worker: string, busy: Iterable<[string, number]>,
    openFrames: number, now: number): boolean {
    const mine = this.msPerFrame(worker)
    if (mine === undefined || openFrames === 0) return false
    const mineDone = now + mine
    let sooner = 0
    for (const [other, framesLeft] of busy) {
      const pace = this.paces.get(other)
      if (other === worker || pace?.msPerFrame === undefined) continue
      // Far behind its own pace it may be stuck: not counted on.
      if (now - pace.since > OVERDUE * pace.msPerFrame) continue
      const free = Math.max(now, pace.since + framesLeft * pace.msPerFrame)
      if (free < mineDone) sooner += Math.floor((mineDone - free) / pace.msPerFrame)
      if (sooner >= openFrames) return true
    }
    return false
  }

  private size (worker: string, present: ReadonlySet<string>, openFrames: number): number {
    const mine = this.msPerFrame(worker)
    if (mine === undefined) return 1
    const byTime = Math.max(1, Math.floor(this.opts.targetMs / mine))
    // This worker's part of the swarm's speed: a 4x worker's share of the
    // frames left is four times a 1x worker's.
    const typical = this.typicalMsPerFrame() ?? mine
    let rate = 0
    for (const w of present) rate += 1 / (this.msPerFrame(w) ?? typical)
    if (!present.has(worker)) rate += 1 / mine
    const share = (1 / mine) / rate
    const byTail = Math.max(1, Math.ceil(openFrames * share * TAIL_SHARE))
    return Math.min(byTime, byTail)
  }

  private pickCopy (worker: string, candidates: Chunk[], now: number): Chunk | undefined {
    const typical = this.typicalMsPerFrame()
    if (typical === undefined) return undefined
    const copierMs = this.msPerFrame(worker) ?? typical
    let best: Chunk | undefined
    let bestFinish = copierMs * this.margin
    for (const chunk of candidates) {
      const holder = this.paces.get(chunk.leases[0].worker)
      const missing = chunk.frames.length - chunk.done.size
      const elapsed = holder === undefined ? 0 : now - holder.since
      const expected = missing * (holder?.msPerFrame ?? typical)
      // Far past what its pace predicts, the holder is stuck or much slower
      // than it was (a straggler): the longer overdue, the sooner copied.
      const finish = elapsed > OVERDUE * expected ? elapsed : expected - elapsed
      if (finish > bestFinish) {
        best = chunk
        bestFinish = finish
      }
    }
    return best
  }

  private typicalMsPerFrame (): number | undefined {
    const known = [...this.speeds().values()]
    if (known.length === 0) return undefined
    return known.reduce((a, b) => a + b, 0) / known.length
  }
}
