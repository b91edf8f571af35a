/**
 * `submit --json`: one JSON object per line on stdout for scripts, each
 * with `event` (its kind) and `time` (ISO 8601), the rest as the job's
 * events carry them. docs/progress.md lists every event and its fields.
 *
 *   {"event":"frame-done","time":"…","frame":7,"worker":"12D3…","path":"…","done":7,"total":24}
 */
import type { JobEvent, JobOutcome } from '../coordinator/events.js'

export interface JobStartedEvent {
  jobId: string
  scene: string
  blend: string
  format: string
  frames: number[]
  chunks: number
  /** Frames already in the output folder (a resumed job). */
  alreadyDone: number[]
  output: string
  /** The dashboard's address, when `--dashboard` serves one. */
  dashboard?: string
}

/** Writes one event as one line; `write` is stdout's in `submit`. */
export class JsonEvents {
  constructor (private readonly write: (text: string) => void =
  (text) => { process.stdout.write(text) }) {}

  jobStarted (started: JobStartedEvent): void {
    this.emit('job-started', { ...started })
  }

  event (event: JobEvent): void {
    const { type, ...fields } = event
    this.emit(type, fields)
  }

  jobFinished (outcome: JobOutcome, elapsedMs: number, interrupted?: string): void {
    this.emit('job-finished', {
      succeeded: outcome.succeeded,
      total: outcome.total,
      done: outcome.done,
      alreadyThere: outcome.alreadyThere,
      failedFrames: outcome.failedFrames,
      rejected: outcome.rejected,
      elapsedMs,
      ...(interrupted === undefined ? {} : { interrupted })
    })
  }

  private emit (event: string, fields: Record<string, unknown>): void {
    // `event` and `time` first, so that a line reads from the left.
    this.write(JSON.stringify({ event, time: new Date().toISOString(), ...fields }) + '\n')
  }
}
