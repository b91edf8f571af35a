/**
 * What a .blend file holds, asked of Blender itself: its scenes with their
 * frame ranges, output size and format, engine, camera and the render
 * settings a worker must be able to honour; and the files outside the
 * .blend that a render reads. Submit uses it to validate `--scene` and
 * the frames before any chunk is offered (B14), and to send every file
 * the scene needs along with it (B09).
 */
import { resolve } from 'node:path'
import { execa } from 'execa'
import { sceneInfoArgv } from './argv.js'
import { withBytecodeCache } from './bytecode.js'
import { BlenderLog } from './chunk-log.js'
import { blenderReason } from './chunk-verdict.js'
import { missingDependencies, type Dependency } from './dependencies.js'
import { BlendUnreadableError, BlenderNotFoundError } from './errors.js'
import type { BlenderInstall } from './install.js'
import { INSPECT_TIMEOUT_MS } from './limits.js'
import { blenderWords, isReadFailure } from './log-parser.js'

export interface SceneInfo {
  name: string
  /** As stored: below 0 when set through the command line (B13). */
  frameStart: number
  frameEnd: number
  frameStep: number
  resolutionX: number
  resolutionY: number
  resolutionPercentage: number
  /** The size of the saved image: the percentage and border crop applied. */
  width: number
  height: number
  /** Frames per second: fps / fpsBase, as Blender plays the scene. */
  fps: number
  fpsBase: number
  /** The scene's own format, e.g. 'PNG' or 'FFMPEG'. */
  fileFormat: string
  /** A movie format (B28): blendnet renders PNG frames instead. */
  isMovie: boolean
  /** 'CYCLES', 'BLENDER_EEVEE', 'BLENDER_WORKBENCH', ... */
  engine: string
  hasCamera: boolean
  /** The view layers enabled for rendering. */
  viewLayers: string[]
  /** Cycles' device setting, whatever the engine. */
  device: 'CPU' | 'GPU'
  /** Of the scene's engine: Cycles, EEVEE, or Workbench anti-aliasing. */
  samples: number
  /**
   * Cycles denoising, or a compositor Denoise node that runs (nodes in
   * use, node not muted). Both need OpenImageDenoise (case B19).
   */
  denoising: boolean
  /**
   * The denoiser that runs: Cycles' own setting ('OPENIMAGEDENOISE',
   * 'OPTIX'), or 'OPENIMAGEDENOISE' for a Denoise node; null for none.
   */
  denoiser: string | null
  /** Compositor File Output nodes that run: they write their own files. */
  fileOutputNodes: string[]
  /**
   * What would need the Python stored in the file, which blendnet never
   * runs (--disable-autoexec): `driver Cube.location[1]: sin(frame)` for
   * each scripted driver beyond Blender's simple expressions, and
   * `registered script rig_ui.py` for each text block run at load.
   */
  usesPython: string[]
  /**
   * Simulations of the scene that step from frame to frame with no bake
   * to read: `rigid body world`, `cloth on 'Flag'`, `particles on 'Sphere'`.
   */
  unbakedSimulations: string[]
}

export interface BlendInfo {
  activeScene: string
  /** The Blender that saved the file, "major.minor": '2.93'. */
  fileVersion: string
  /** Sorted by name, as Blender lists them. */
  scenes: SceneInfo[]
  /** Every file outside the .blend that the file's scenes read. */
  dependencies: Dependency[]
  /** The dependencies that are not all there. */
  missing: Dependency[]
  /** Names of datablocks packed into the file: they need no transfer. */
  packed: string[]
}

/** As scene_info.py prints it: `missing` is derived here. */
type PrintedInfo = Omit<BlendInfo, 'missing'>

export interface InspectOptions {
  timeoutMs?: number
  signal?: AbortSignal
}

/** `blendnet-scene-info: {...}`, the one line scene_info.py prints. */
const INFO_MARKER = /^blendnet-scene-info: (\{.*\})$/

/**
 * The Blender to read the file with. Its version only words an error, so
 * it may still be coming: submit reads the scene while `--version` runs.
 */
export type InspectingBlender = Pick<BlenderInstall, 'path'> & {
  version: string | Promise<string>
}

/** Reads every scene's settings; throws BlendUnreadableError if it can't. */
export async function inspectBlend (
  blender: InspectingBlender, blendPath: string, opts: InspectOptions = {}
): Promise<BlendInfo> {
  const path = resolve(blendPath)
  const result = await withBytecodeCache(async env => await execa(blender.path, sceneInfoArgv(path), {
    env,
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: opts.timeoutMs ?? INSPECT_TIMEOUT_MS,
    cancelSignal: opts.signal
  }))

  // Neither says anything about the file.
  if (result.isCanceled) throw opts.signal?.reason ?? new Error('cancelled')
  if (neverRan(result)) {
    throw new BlenderNotFoundError(blender.path,
      `could not be started (${result.originalMessage})`, result)
  }

  const lines = (result.all ?? '').split('\n')
  const info = findInfo(lines)
  if (result.exitCode === 0 && info !== undefined) return info
  throw unreadable(await blender.version, path, result, lines)
}

function findInfo (lines: string[]): BlendInfo | undefined {
  for (const line of lines) {
    const m = INFO_MARKER.exec(line)
    if (m === null) continue
    const info = JSON.parse(m[1]) as PrintedInfo
    return { ...info, missing: missingDependencies(info.dependencies) }
  }
  return undefined
}

interface InspectOutcome {
  exitCode?: number
  signal?: string
  timedOut: boolean
}

function neverRan (result: InspectOutcome): boolean {
  return result.exitCode === undefined && result.signal === undefined &&
    !result.timedOut
}

function unreadable (
  version: string, path: string,
  result: InspectOutcome, lines: string[]
): BlendUnreadableError {
  const log = new BlenderLog()
  for (const line of lines) log.add(line)
  const readFailure = log.errors.find(isReadFailure)
  const reason = readFailure !== undefined
    ? blenderWords(readFailure)
    : blenderReason(log) ?? processReason(result)
  return new BlendUnreadableError(path, version, reason, log.logTail)
}

function processReason (result: InspectOutcome): string {
  if (result.timedOut) return 'Blender took too long to load it'
  if (result.signal !== undefined) {
    return `Blender died of ${result.signal} while loading it`
  }
  return `Blender exited with code ${result.exitCode ?? 'unknown'}`
}
