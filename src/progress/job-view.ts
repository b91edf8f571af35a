/**
 * What the artist sees of a running job, built from the coordinator's
 * events: the state of every frame, each worker's chunk and Blender's
 * progress on it, the failures, and an ETA. The terminal's live view and
 * the dashboard both read it; it holds no I/O and takes the time as an
 * argument, so that what it shows can be tested as plain data.
 */
import type { ChunkProgressReport, JobEvent, JobOutcome } from '../coordinator/events.js'

/**
 * waiting: open for any worker; queued: in a chunk a worker holds;
 * rendering: the frame its Blender is on; done (rendered by this run);
 * there: done before this run started (resumed); failed: given up on.
 */
export type FrameState = 'waiting' | 'queued' | 'rendering' | 'done' | 'there' | 'failed'

/** One letter per state, for compact grids on the wire. */
export const STATE_LETTER: Record<FrameState, string> = {
  waiting: 'w', queued: 'q', rendering: 'r', done: 'd', there: 't', failed: 'f'
}

export interface JobInfo {
  jobId: string
  scene: string
  format: string
  /** Every frame of the job, in order. */
  frames: number[]
  /** Frames already in the output folder when this run started. */
  alreadyDone: ReadonlySet<number>
}

export interface WorkerRow {
  peer: string
  blender: string
  present: boolean
  chunk?: number
  /** Frames of its chunk not delivered yet. */
  frames: number[]
  progress?: ChunkProgressReport
  framesDone: number
  /** Seconds of chunk time per frame delivered, once it delivered one. */
  secondsPerFrame?: number
}

export interface Failure {
  at: number
  worker: string
  frames: number[]
  reason: string
  final: boolean
}

export interface JobSummary {
  total: number
  /** Frames in the output folder, those already there included. */
  done: number
  alreadyThere: number
  failed: number
  elapsedMs: number
  /** Undefined until this run has delivered a frame. */
  etaMs?: number
  finished?: { succeeded: boolean }
}

interface WorkerState {
  peer: string
  blender: string
  present: boolean
  chunk?: number
  progress?: ChunkProgressReport
  framesDone: number
  busyMs: number
  busySince?: number
}

const MAX_FAILURES_KEPT = 50

export class JobView {
  readonly info: JobInfo
  private readonly states = new Map<number, FrameState>()
  /** Chunks held, by `chunk/worker`: a chunk may be granted twice near the end. */
  private readonly held = new Map<string, { chunk: number, worker: string, frames: Set<number> }>()
  private readonly workerStates = new Map<string, WorkerState>()
  private readonly doneBy = new Map<number, string>()
  /** The chunk each frame was last granted in: finds its Blender log. */
  private readonly chunkOfFrame = new Map<number, number>()
  readonly failures: Failure[] = []
  private readonly started: number
  private firstGrant?: number
  private renderedNow = 0
  private finished?: { succeeded: boolean, at: number }

  constructor (info: JobInfo, now = Date.now()) {
    this.info = info
    this.started = now
    for (const frame of info.frames) {
      this.states.set(frame, info.alreadyDone.has(frame) ? 'there' : 'waiting')
    }
  }

  /** Takes in one event; returns the frames whose state changed. */
  apply (event: JobEvent, now = Date.now()): number[] {
    switch (event.type) {
      case 'worker-joined':
        this.workerOf(event.worker, event.blender).present = true
        return []
      case 'worker-left':
        this.workerOf(event.worker).present = false
        return []
      case 'chunk-granted':
        return this.granted(event.chunk, event.worker, event.frames, now)
      case 'chunk-progress':
        return this.progressed(event.chunk, event.worker, event.progress)
      case 'frame-done':
        return this.frameDone(event.frame, event.worker, now)
      case 'chunk-failed':
        this.keepFailure({ at: now, worker: event.worker, frames: event.frames, reason: event.reason, final: event.final })
        this.endChunk(event.chunk, event.worker, now)
        return this.setStates(event.frames, event.final ? 'failed' : 'waiting')
      case 'frame-rejected':
        this.keepFailure({ at: now, worker: event.worker, frames: [event.frame], reason: event.reason, final: false })
        return []
      case 'lease-expired':
      case 'chunk-released':
        this.endChunk(event.chunk, event.worker, now)
        return this.setStates(event.frames, 'waiting')
      default:
        return []
    }
  }

  /** The job ended: frames not done are failed, workers idle. */
  finish (outcome: JobOutcome, now = Date.now()): number[] {
    this.finished = { succeeded: outcome.succeeded, at: now }
    for (const { chunk, worker } of [...this.held.values()]) this.endChunk(chunk, worker, now)
    return this.setStates(outcome.failedFrames.map(f => f.frame), 'failed')
  }

  stateOf (frame: number): FrameState | undefined {
    return this.states.get(frame)
  }

  /** The chunk a frame was last granted in, this run. */
  chunkOf (frame: number): number | undefined {
    return this.chunkOfFrame.get(frame)
  }

  /** The worker that delivered a frame of this run. */
  renderedBy (frame: number): string | undefined {
    return this.doneBy.get(frame)
  }

  summary (now = Date.now()): JobSummary {
    let done = 0
    let failed = 0
    for (const state of this.states.values()) {
      if (state === 'done' || state === 'there') done++
      else if (state === 'failed') failed++
    }
    const end = this.finished?.at ?? now
    return {
      total: this.states.size,
      done,
      alreadyThere: this.info.alreadyDone.size,
      failed,
      elapsedMs: end - this.started,
      etaMs: this.finished === undefined ? this.eta(this.states.size - done - failed, now) : 0,
      finished: this.finished === undefined ? undefined : { succeeded: this.finished.succeeded }
    }
  }

  /** Workers present, and those gone that still hold a chunk, by peer. */
  workers (now = Date.now()): WorkerRow[] {
    return [...this.workerStates.values()]
      .filter(w => w.present || w.chunk !== undefined || w.framesDone > 0)
      .sort((a, b) => a.peer.localeCompare(b.peer))
      .map(w => {
        const busyMs = w.busyMs + (w.busySince === undefined ? 0 : now - w.busySince)
        return {
          peer: w.peer,
          blender: w.blender,
          present: w.present,
          chunk: w.chunk,
          frames: w.chunk === undefined ? [] : [...this.held.get(`${w.chunk}/${w.peer}`)?.frames ?? []],
          progress: w.progress,
          framesDone: w.framesDone,
          secondsPerFrame: w.framesDone === 0 ? undefined : busyMs / 1000 / w.framesDone
        }
      })
  }

  /** Every frame's state as one letter each, in the job's frame order. */
  grid (): string {
    return this.info.frames.map(f => STATE_LETTER[this.states.get(f) ?? 'waiting']).join('')
  }

  /**
   * Frames left over this run's pace so far: frames delivered since the
   * first chunk was granted. Blunt, but it needs no guess at frame cost.
   */
  private eta (left: number, now: number): number | undefined {
    if (left === 0) return 0
    if (this.firstGrant === undefined || this.renderedNow === 0) return undefined
    const msPerFrame = (now - this.firstGrant) / this.renderedNow
    return Math.round(left * msPerFrame)
  }

  private granted (chunk: number, worker: string, frames: number[], now: number): number[] {
    this.firstGrant ??= now
    this.held.set(`${chunk}/${worker}`, { chunk, worker, frames: new Set(frames) })
    for (const frame of frames) this.chunkOfFrame.set(frame, chunk)
    const row = this.workerOf(worker)
    row.chunk = chunk
    row.progress = undefined
    row.busySince ??= now
    return this.setStates(frames, 'queued')
  }

  private progressed (chunk: number, worker: string, progress: ChunkProgressReport): number[] {
    const held = this.held.get(`${chunk}/${worker}`)
    if (held === undefined || !held.frames.has(progress.frame)) return []
    const row = this.workerOf(worker)
    const before = row.progress?.frame
    row.progress = progress
    if (before === progress.frame) return []
    // Frames before this one that are not delivered yet are rendered,
    // waiting for their upload; they stay queued.
    const changed = before !== undefined && held.frames.has(before) ? this.setStates([before], 'queued') : []
    return [...changed, ...this.setStates([progress.frame], 'rendering')]
  }

  private frameDone (frame: number, worker: string, now: number): number[] {
    this.renderedNow++
    this.doneBy.set(frame, worker)
    const row = this.workerOf(worker)
    row.framesDone++
    for (const held of [...this.held.values()]) {
      if (held.frames.delete(frame) && held.frames.size === 0) this.endChunk(held.chunk, held.worker, now)
    }
    return this.setStates([frame], 'done')
  }

  private endChunk (chunk: number, worker: string, now: number): void {
    if (!this.held.delete(`${chunk}/${worker}`)) return
    const row = this.workerStates.get(worker)
    if (row === undefined || row.chunk !== chunk) return
    row.chunk = undefined
    row.progress = undefined
    if (row.busySince !== undefined) row.busyMs += now - row.busySince
    row.busySince = undefined
  }

  private setStates (frames: number[], state: FrameState): number[] {
    const changed: number[] = []
    for (const frame of frames) {
      const before = this.states.get(frame)
      // Done is final: a late event about a frame cannot undo it.
      if (before === undefined || before === state || before === 'done' || before === 'there') continue
      this.states.set(frame, state)
      changed.push(frame)
    }
    return changed
  }

  private workerOf (peer: string, blender?: string): WorkerState {
    let row = this.workerStates.get(peer)
    if (row === undefined) {
      row = { peer, blender: blender ?? '', present: true, framesDone: 0, busyMs: 0 }
      this.workerStates.set(peer, row)
    }
    if (blender !== undefined) row.blender = blender
    return row
  }

  private keepFailure (failure: Failure): void {
    this.failures.push(failure)
    if (this.failures.length > MAX_FAILURES_KEPT) this.failures.shift()
  }
}
