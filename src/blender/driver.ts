/**
 * Rendering one chunk (a list of frames of one scene) with Blender. The
 * `ChunkRenderer` interface is what workers use; `ProcessChunkRenderer`
 * starts one Blender process per chunk; `SessionChunkRenderer`
 * (session.ts) keeps one Blender per job warm, and falls back to a fresh
 * process when that Blender dies.
 */
import { dirname, resolve } from 'node:path'
import type { ImageFormat } from '../job/naming.js'
import { logger } from '../common/log.js'
import { renderChunkArgv } from './argv.js'
import { listChunkFiles, prepareChunkDir } from './chunk-files.js'
import { BlenderLog } from './chunk-log.js'
import { judgeChunk } from './chunk-verdict.js'
import type { PathMap } from './dependencies.js'
import { ChunkRenderError } from './errors.js'
import type { BlenderInstall } from './install.js'
import { DEFAULT_HANG_TIMEOUT_MS } from './limits.js'
import { runBlender, type BlenderRun } from './process.js'
import { checkRequest, describeChunk, savedFrames } from './request.js'
import type { Sandbox } from './sandbox.js'

const log = logger('blender:driver')

export interface ChunkRenderRequest {
  blendPath: string
  scene: string
  /** Distinct whole frames, rendered in this order. */
  frames: number[]
  format: ImageFormat
  /** Created fresh by the driver; must not exist or must be empty. */
  chunkDir: string
  /** Overrides the scene's resolution %, e.g. 25 for a preview job. */
  resolutionPercentage?: number
  /** Override the scene's engine, samples and Cycles device. */
  engine?: string
  samples?: number
  device?: 'CPU' | 'GPU'
  /**
   * Artist-side absolute path → where this worker put that file or
   * folder. Applied before rendering; a file the render reads that is
   * still missing then fails the chunk, naming it (case B09).
   */
  pathMap?: PathMap
  /** Render without the files still missing after the path map, as the
   * artist accepted at submit (--allow-missing), naming them in the log. */
  allowMissing?: boolean
  /** Let Blender run the Python stored in the file; off unless the job
   * asks for it and this worker's operator allows it. */
  allowScripts?: boolean
  timeoutMs?: number
  /**
   * Blender printing no line for this long is stopped and the chunk fails
   * as hung. Default DEFAULT_HANG_TIMEOUT_MS; 0 never stops it.
   */
  hangTimeoutMs?: number
  signal?: AbortSignal
  /**
   * A frame's file was written. A hint for progress displays: the chunk
   * may still fail, and only the result's frames are final.
   */
  onFrameSaved?: (frame: number, path: string) => void
  onLogLine?: (line: string) => void
}

export interface ChunkRenderResult {
  /** In the order of the request's frames. */
  frames: Array<{ frame: number, path: string }>
  /** Blender's whole output for this chunk: `<chunkDir>/blender.log`. */
  logPath: string
  /** Lines worth an operator's look that did not fail the chunk. */
  warnings: string[]
}

export interface ChunkRenderer {
  /**
   * Resolves only when every planned frame is on disk; else rejects with
   * ChunkRenderError, leaving whatever Blender wrote in the chunk dir for
   * the caller to inspect or delete: none of it counts as rendered.
   */
  render: (req: ChunkRenderRequest) => Promise<ChunkRenderResult>
  /** Ends whatever Blender is kept running for this .blend. */
  close?: (blendPath: string) => Promise<void>
  /** Ends every Blender kept running. */
  closeAll?: () => Promise<void>
}

export interface ProcessRendererOptions {
  /** Made for this Blender by chooseSandbox; none runs Blender as is. */
  sandbox?: Sandbox
}

/** Starts one Blender process per chunk. */
export class ProcessChunkRenderer implements ChunkRenderer {
  private readonly blender: BlenderInstall
  private readonly sandbox: Sandbox | undefined

  constructor (blender: BlenderInstall, opts: ProcessRendererOptions = {}) {
    this.blender = blender
    this.sandbox = opts.sandbox
  }

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    const expect = expectationOf(req)
    await prepareChunkDir(expect.chunkDir)

    const blenderLog = new BlenderLog()
    log.debug('starting Blender', { chunk: describeChunk(expect),
      dir: expect.chunkDir })
    const argv = renderChunkArgv(expect)
    const run = await runBlender(this.blender, argv,
      { ...expect, sandbox: this.sandbox, readable: readablePaths(expect) }, blenderLog)

    await judge(expect, run, blenderLog)
    return { frames: savedFrames(expect), logPath: run.logPath,
      warnings: blenderLog.warnings }
  }
}

/**
 * What a sandboxed Blender may read besides the system: the .blend's
 * folder (on a worker, the job's files dir, where the path map points)
 * and any mapped file placed elsewhere.
 */
export function readablePaths (req: ChunkRenderRequest): string[] {
  const blendDir = dirname(req.blendPath)
  const mapped = Object.values(req.pathMap ?? {}).map(p => resolve(p))
  return [blendDir, ...mapped.filter(p => !p.startsWith(blendDir + '/'))]
}

/** The request checked, with absolute paths and its hang timeout. */
export function expectationOf (req: ChunkRenderRequest): ChunkRenderRequest {
  checkRequest(req)
  return { ...req, blendPath: resolve(req.blendPath),
    chunkDir: resolve(req.chunkDir), hangTimeoutMs: hangTimeoutOf(req) }
}

/** Node's timers hold up to 2^31-1 ms; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

function hangTimeoutOf (req: ChunkRenderRequest): number {
  const ms = req.hangTimeoutMs ?? DEFAULT_HANG_TIMEOUT_MS
  if (!(ms >= 0 && ms <= MAX_TIMER_MS)) {
    throw new RangeError(`cannot render ${describeChunk(req)}: the hang ` +
      `timeout must be 0 (off) to ${MAX_TIMER_MS} ms, not ${ms}`)
  }
  return ms
}

/** Throws ChunkRenderError unless the chunk holds exactly its frames. */
async function judge (
  expect: ChunkRenderRequest, run: BlenderRun, blenderLog: BlenderLog
): Promise<void> {
  const files = await listChunkFiles(expect.chunkDir, expect.format)
  const reason = judgeChunk(expect, run.outcome, blenderLog, files)
  if (reason !== undefined) throw chunkFailure(expect, run, blenderLog, reason)
}

export function chunkFailure (
  expect: ChunkRenderRequest, run: BlenderRun, blenderLog: BlenderLog,
  reason: string
): ChunkRenderError {
  log.debug('chunk failed', { chunk: describeChunk(expect), reason })
  return new ChunkRenderError(describeChunk(expect), {
    ...run.outcome, reason, logPath: run.logPath,
    logTail: blenderLog.logTail
  })
}
