/**
 * Blender command lines, built from named parts and never from a shell
 * string, so that spaces, `&`, `#` and non-ASCII in paths reach Blender
 * untouched (case B21).
 *
 * Blender runs its arguments left to right (BLENDER-NOTES.md): the .blend
 * comes before anything that renders (B07), `-S -o -F -x` before the
 * script that renders (B01), and `--python-exit-code` before `--python`
 * (B04), or a failing script would still exit 0.
 */
import { join } from 'node:path'
import { packagePath } from '../common/paths.js'
import { BLENDER_OUTPUT_PATTERN, type ImageFormat } from '../job/naming.js'
import type { PathMap } from './dependencies.js'

/**
 * No UI, no user preferences or add-ons, and no Python stored in the
 * file (drivers, startup scripts): a worker renders what the file holds,
 * not what a file may run.
 */
export const BACKGROUND_FLAGS: readonly string[] = [
  '-b', '--factory-startup', '--disable-autoexec'
]

/** What the render script inside Blender is told, as one JSON argument. */
export interface ChunkPlan {
  scene: string
  frames: number[]
  /** Overrides the scene's own resolution %, e.g. 25 for previews. */
  resolutionPercentage?: number
  /** Override the scene's engine, samples and Cycles device. */
  engine?: string
  samples?: number
  device?: 'CPU' | 'GPU'
  /** Where the worker put the scene's files (render_chunk.py applies it). */
  pathMap?: PathMap
  /** Files still missing after the path map do not fail the chunk. */
  allowMissing?: boolean
}

export interface RenderChunkArgs extends ChunkPlan {
  /** Absolute; Blender reads relative paths from its own working dir. */
  blendPath: string
  /** Absolute; frames are written here under blendnet's own names. */
  chunkDir: string
  format: ImageFormat
  /** Let Blender run the file's own Python (drivers, registered scripts). */
  allowScripts?: boolean
}

export function scriptPath (name: string): string {
  return packagePath('scripts', 'blender', name)
}

/**
 * Loads the .blend first: flags before it would apply to another scene.
 * Only a job that allows scripts, on a worker that allows them, lets
 * Blender run the Python stored in the file.
 */
export function openBlendArgs (blendPath: string, allowScripts = false): string[] {
  const flags = allowScripts
    ? BACKGROUND_FLAGS.map(flag => flag === '--disable-autoexec' ? '--enable-autoexec' : flag)
    : BACKGROUND_FLAGS
  return [...flags, blendPath]
}

/** Runs a script so that an exception in it makes Blender exit 1. */
export function runScriptArgs (script: string, scriptArgs: string[]): string[] {
  return ['--python-exit-code', '1', '--python', script, '--', ...scriptArgs]
}

export function sceneInfoArgv (blendPath: string): string[] {
  return [
    ...openBlendArgs(blendPath),
    ...runScriptArgs(scriptPath('scene_info.py'), [])
  ]
}

/** The whole command line for rendering one chunk in one process. */
export function renderChunkArgv (args: RenderChunkArgs): string[] {
  const output = join(args.chunkDir, BLENDER_OUTPUT_PATTERN)
  const plan = chunkPlan(args)
  return [
    ...openBlendArgs(args.blendPath, args.allowScripts),
    '-S', args.scene,
    '-o', output,
    '-F', args.format,
    '-x', '1',
    ...runScriptArgs(scriptPath('render_chunk.py'), [JSON.stringify(plan)])
  ]
}

/** What render_chunk.py and render_server.py are told of a chunk. */
export function chunkPlan (args: ChunkPlan): ChunkPlan {
  return {
    scene: args.scene,
    frames: args.frames,
    resolutionPercentage: args.resolutionPercentage,
    engine: args.engine,
    samples: args.samples,
    device: args.device,
    pathMap: args.pathMap,
    allowMissing: args.allowMissing
  }
}

/**
 * A standby Blender (standby.ts): no file yet, the session script waiting
 * for the first chunk to name one.
 */
export function standbyArgv (): string[] {
  return [
    ...BACKGROUND_FLAGS,
    ...runScriptArgs(scriptPath('render_server.py'), [JSON.stringify({ standby: true })])
  ]
}
