/**
 * What happens during a job, as typed events. The CLI's progress lines
 * read these; so will a JSON output and a dashboard.
 */
export type JobEvent =
  /** `peers`: peers connected at all, workers or not: 0 means none was reached. */
  | { type: 'waiting-for-workers', waitedMs: number, peers: number, allLeft?: boolean }
  | { type: 'worker-joined', worker: string, summary: string, unmet: string[], blender?: string }
  | { type: 'worker-left', worker: string, stopped: boolean }
  | { type: 'chunk-granted', chunk: number, worker: string, frames: number[], speculative?: boolean }
  | { type: 'frame-done', frame: number, worker: string, path: string, done: number, total: number }
  | { type: 'frame-rejected', frame: number, worker: string, reason: string }
  | { type: 'chunk-failed', chunk: number, frames: number[], worker: string, reason: string, final: boolean }
  | { type: 'lease-expired', chunk: number, frames: number[], worker: string }
  | { type: 'chunk-released', chunk: number, frames: number[], worker: string }
  | { type: 'message-rejected', peer: string, reason: string }
  | { type: 'chunk-progress', chunk: number, worker: string, progress: ChunkProgressReport }

/**
 * Blender's own progress on the frame a worker is rendering, as the
 * worker reports it (at most about once a second): `Sample 12/64`.
 */
export interface ChunkProgressReport {
  frame: number
  /** Samples done and planned, 0 when Blender's line gave none. */
  sample: number
  samples: number
  /** The end of Blender's line: `Sample 12/64`, `Synchronizing object`. */
  status: string
}

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

/** Why a coordinator with no connection at all has no workers. */
export const NO_PEER_HINT = 'no peer was reached: check that a worker runs at the --bootstrap address, with the same swarm key'
