/**
 * What happens during a job, as typed events. The CLI's progress lines
 * read these; so will a JSON output and a dashboard.
 */
export type JobEvent =
  | { type: 'waiting-for-workers', waitedMs: number }
  | { type: 'worker-joined', worker: string, summary: string, unmet: string[] }
  | { type: 'chunk-granted', chunk: number, worker: string, frames: number[] }
  | { type: 'frame-done', frame: number, worker: string, path: string, done: number, total: number }
  | { type: 'frame-rejected', frame: number, worker: string, reason: string }
  | { type: 'chunk-failed', chunk: number, frames: number[], worker: string, reason: string, final: boolean }
  | { type: 'lease-expired', chunk: number, frames: number[], worker: string }
  | { type: 'chunk-released', chunk: number, frames: number[], worker: string }
  | { type: 'message-rejected', peer: string, reason: string }

export interface FailedFrame {
  frame: number
  reason: string
}

export interface JobOutcome {
  succeeded: boolean
  total: number
  /** Frames in the output folder at the end, `alreadyThere` included. */
  done: number
  /** Frames already in the output folder when the job (re)started. */
  alreadyThere: number
  failedFrames: FailedFrame[]
  /** Hostile or malformed messages refused during the job, by kind. */
  rejected: Record<string, number>
}
