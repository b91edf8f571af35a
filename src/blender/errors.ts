/**
 * What can go wrong when blendnet drives Blender, one class per thing a
 * caller can act on. Each message is one sentence naming the file, the
 * scene or the frames, with Blender's own words where it gave any.
 */

/** No usable Blender at the path tried; the message says how to fix it. */
export class BlenderNotFoundError extends Error {
  readonly path: string

  constructor (path: string, problem: string, cause?: unknown) {
    super(`Blender at "${path}" ${problem}; install Blender or point ` +
      'blendnet at it with --blender PATH or BLENDNET_BLENDER.', { cause })
    this.name = 'BlenderNotFoundError'
    this.path = path
  }
}

/**
 * This Blender cannot open the .blend file: damaged, not a .blend, saved
 * by a much newer Blender, or it crashes while loading it.
 */
export class BlendUnreadableError extends Error {
  readonly blendPath: string
  /** Blender's own words: `Missing DNA block`, `not a blend file`. */
  readonly reason: string
  readonly logTail: string[]

  constructor (blendPath: string, blenderVersion: string, reason: string,
    logTail: string[]) {
    super(`Blender ${blenderVersion} cannot read "${blendPath}": ${reason}.`)
    this.name = 'BlendUnreadableError'
    this.blendPath = blendPath
    this.reason = reason
    this.logTail = logTail
  }
}

/** The chunk dir holds files already: they could pass for frames. */
export class ChunkDirNotEmptyError extends Error {
  readonly chunkDir: string

  constructor (chunkDir: string, entries: string[]) {
    super(`The chunk directory "${chunkDir}" must be new or empty, ` +
      `but holds ${entries.slice(0, 3).join(', ')}` +
      `${entries.length > 3 ? ', …' : ''}.`)
    this.name = 'ChunkDirNotEmptyError'
    this.chunkDir = chunkDir
  }
}

export interface ChunkFailure {
  /** One line, in Blender's words where it gave any. */
  reason: string
  exitCode: number | undefined
  signal: string | undefined
  timedOut: boolean
  cancelled: boolean
  /** Stopped for printing nothing too long; absent means false. */
  hung?: boolean
  logPath: string
  logTail: string[]
}

/** A chunk did not deliver exactly its planned frames. */
export class ChunkRenderError extends Error implements ChunkFailure {
  readonly reason: string
  readonly exitCode: number | undefined
  readonly signal: string | undefined
  readonly timedOut: boolean
  readonly cancelled: boolean
  readonly hung: boolean
  readonly logPath: string
  readonly logTail: string[]

  constructor (what: string, failure: ChunkFailure) {
    super(`Rendering ${what} failed: ${failure.reason}`)
    this.name = 'ChunkRenderError'
    this.reason = failure.reason
    this.exitCode = failure.exitCode
    this.signal = failure.signal
    this.timedOut = failure.timedOut
    this.cancelled = failure.cancelled
    this.hung = failure.hung ?? false
    this.logPath = failure.logPath
    this.logTail = failure.logTail
  }
}
