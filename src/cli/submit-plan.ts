/**
 * Everything `submit` checks before it touches the network, in the order
 * a user would fix things: the file, the flags, the output folder, then
 * what Blender says of the scene. Each problem is one UsageError sentence.
 */
import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { access, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { readBlendHeader } from '../blendfile/header.js'
import { readRenderInfo } from '../blendfile/render-info.js'
import { blenderPath, findBlender } from '../blender/install.js'
import { missingForRender } from '../blender/dependencies.js'
import { inspectBlend, type BlendInfo, type SceneInfo } from '../blender/scene-info.js'
import { fileProblem, UsageError } from '../common/errors.js'
import { atLeastVersion } from '../common/versions.js'
import { formatFrameList, framesFromScene, parseFrameSpec, repeatedFrames, splitIntoChunks } from '../job/frames.js'
import { IMAGE_FORMATS, isImageFormat, type ImageFormat } from '../job/naming.js'
import { buildManifest } from '../job/manifest.js'
import { jobIdOf, type JobSettings, type JobSpec } from '../job/spec.js'
import { hashFile } from '../net/fetch.js'

export interface SubmitInput {
  blendPath: string
  outputDir: string
  frames?: string
  scene?: string
  format?: string
  chunkSize: number
  /** Render even though files the scene reads are missing. */
  allowMissing?: boolean
  /** Let workers run the Python stored in the file. */
  allowScripts?: boolean
  /** Overrides of the scene's own settings. */
  engine?: string
  device?: string
  samples?: number
  resolutionPercentage?: number
}

const ENGINES = ['CYCLES', 'BLENDER_EEVEE', 'BLENDER_WORKBENCH']

export interface JobPlan {
  spec: JobSpec
  outputDir: string
  /** Things the user should know that are not errors. */
  notes: string[]
  /** The scene's frame rate, fps / base; unknown for a file this
   * machine's Blender cannot read. */
  frameRate?: { fps: number, base: number }
}

function frameListNotes (input: SubmitInput): string[] {
  const repeated = input.frames === undefined ? [] : repeatedFrames(input.frames)
  return repeated.length === 0
    ? []
    : [`--frames names frames ${formatFrameList(repeated)} more than once; each renders once`]
}

/** Checks that need no Blender: run first, so mistakes show at once. */
export async function checkInputs (input: SubmitInput): Promise<{ minBlender: string, frames?: number[] }> {
  // Blender names the file it read in one log line, which the worker
  // checks: a line break would cut it (and a terminal would garble it).
  if (/[\x00-\x1f\x7f]/.test(basename(input.blendPath))) {
    throw new UsageError(`${JSON.stringify(basename(input.blendPath))} has a line break or other control character in its name; rename the file`)
  }
  const header = await readBlendHeader(input.blendPath)
  const frames = input.frames === undefined ? undefined : parseFrameSpec(input.frames)
  if (input.engine !== undefined && !ENGINES.includes(input.engine.toUpperCase())) {
    throw new UsageError(`--engine "${input.engine}" is not one of ${ENGINES.join(', ')}`)
  }
  if (input.device !== undefined && !['CPU', 'GPU'].includes(input.device.toUpperCase())) {
    throw new UsageError(`--device "${input.device}" must be CPU or GPU`)
  }
  if (input.format !== undefined && !isImageFormat(input.format.toUpperCase())) {
    throw new UsageError(`--format "${input.format}" is not one of ${IMAGE_FORMATS.join(', ')}`)
  }
  await checkOutputDir(input.outputDir)
  return { minBlender: header.versionString, frames }
}

export async function checkOutputDir (dir: string): Promise<void> {
  // Kernel filesystems: Node's recursive mkdir never returns in /proc.
  if (/^\/(proc|sys|dev)(\/|$)/.test(resolve(dir))) {
    throw new UsageError(`--output "${dir}" is inside /${resolve(dir).split('/')[1]}, a kernel filesystem, not a folder for frames`)
  }
  const existing = await stat(dir).catch(() => undefined)
  if (existing !== undefined && !existing.isDirectory()) {
    throw new UsageError(`--output "${dir}" is a file, not a folder`)
  }
  try {
    await mkdir(dir, { recursive: true }).catch(async (err: NodeJS.ErrnoException) => {
      // Node's recursive mkdir says ENOENT where the folder cannot be made
      // in an existing parent (a read-only filesystem); a plain one says why.
      const parent = await stat(dirname(resolve(dir))).catch(() => undefined)
      if (err.code === 'ENOENT' && parent?.isDirectory() === true) await mkdir(dir)
      else throw err
    })
    await access(dir, constants.W_OK)
    const probe = join(dir, `.blendnet-write-test-${process.pid}`)
    await writeFile(probe, '')
    await rm(probe)
  } catch (err) {
    throw new UsageError(`--output "${dir}" is not writable: ${fileProblem(err)}`)
  }
}

/**
 * The job, from the inputs and this machine's Blender (`blenderFlag` as
 * findBlender takes it). Blender starts twice, for `--version` and to read
 * the scene; both run at once, since each costs a Blender start-up, and
 * the reading is dropped when the version says it could not succeed.
 */
export async function planJob (input: SubmitInput,
  blenderFlag: string | undefined, onInputsChecked?: () => void): Promise<JobPlan> {
  const checked = await checkInputs(input)
  onInputsChecked?.()
  const found = findBlender(blenderFlag)
  const reading = new AbortController()
  const info = inspectBlend(
    { path: blenderPath(blenderFlag), version: found.then(b => b.version) },
    input.blendPath, { signal: reading.signal })
  info.catch(() => {}) // awaited below, unless dropped
  try {
    const blender = await found
    if (!atLeastVersion(blender.version, checked.minBlender)) {
      reading.abort()
      return await planUnreadable(input, checked, blender.version)
    }
  } catch (err) {
    reading.abort()
    throw err
  }
  return await planReadable(input, checked, await info)
}

async function planReadable (input: SubmitInput,
  checked: { minBlender: string, frames?: number[] },
  info: BlendInfo): Promise<JobPlan> {
  const scene = pickScene(info, input.scene)
  if (scene.width < 1 || scene.height < 1) {
    throw new UsageError(`scene "${scene.name}" renders ${scene.width}x${scene.height} pixels (resolution ${scene.resolutionX}x${scene.resolutionY} at ${scene.resolutionPercentage}%), too small for an image`)
  }
  if (!scene.hasCamera) {
    throw new UsageError(`scene "${scene.name}" has no camera, so Blender cannot render it ("Cannot render, no camera")`)
  }
  const notes = frameListNotes(input)
  checkDependencies(input, info, notes)
  const format = pickFormat(scene, input.format, notes)
  checkSceneOutputs(scene, format, input.allowScripts === true, notes)
  const frames = checked.frames ?? framesFromScene(scene.frameStart, scene.frameEnd, scene.frameStep)
  const engine = input.engine?.toUpperCase() ?? scene.engine
  // A config file may set a device for every job: not a mistake, a note.
  if (input.device !== undefined && engine !== 'CYCLES') {
    notes.push(`--device ${input.device.toUpperCase()} is for Cycles; scene "${scene.name}" renders with ${engine}, which does not use it`)
  }

  const blendPath = resolve(input.blendPath)
  const { size } = await stat(blendPath)
  const built = await buildManifest(blendPath, info.dependencies)
  const parts: Omit<JobSpec, 'jobId'> = {
    blend: { path: blendPath, sha256: await hashFile(blendPath), size, name: basename(blendPath) },
    manifest: { bytes: built.bytes, sha256: createHash('sha256').update(built.bytes).digest() },
    files: built.manifest.files,
    settings: renderSettings(scene, format, input, engine),
    requirements: {
      minBlender: checked.minBlender,
      engine,
      device: deviceOf(scene, input),
      denoiser: scene.denoising ? scene.denoiser ?? 'OPENIMAGEDENOISE' : undefined,
      scripts: input.allowScripts === true,
      jobBytes: totalBytes(built.manifest.files)
    },
    chunks: splitIntoChunks(frames, input.chunkSize)
  }
  const outputDir = resolve(input.outputDir)
  const frameRate = { fps: scene.fps, base: scene.fpsBase }
  return { spec: { jobId: jobIdOf(parts, outputDir), ...parts }, outputDir, notes, frameRate }
}

/**
 * A file saved by a newer Blender than this machine's (case B22): what it
 * needs can only be learnt from the file's REND blocks (scene and frame
 * range) and from the flags. Only workers whose Blender reads the file may
 * take it; the .blend travels alone, and the worker's Blender checks the
 * rest when it loads the scene (a missing file, a GPU or a denoiser it
 * lacks fails the chunk by name), and the first good frame sets the size.
 */
async function planUnreadable (input: SubmitInput,
  checked: { minBlender: string, frames?: number[] },
  localVersion: string): Promise<JobPlan> {
  const name = basename(input.blendPath)
  const known = await readRenderInfo(input.blendPath)
  const sceneName = input.scene ?? known[0]?.scene
  if (sceneName === undefined) {
    throw new UsageError(`"${name}" was saved by Blender ${checked.minBlender}, which this machine's Blender ${localVersion} cannot read, and it names no scene blendnet can find without it; pass --scene and --frames`)
  }
  const range = known.find(r => r.scene === sceneName)
  if (checked.frames === undefined && range === undefined) {
    throw new UsageError(`"${name}" was saved by Blender ${checked.minBlender}, which this machine's Blender ${localVersion} cannot read, and its file does not say which frames scene "${sceneName}" has; pass --frames`)
  }
  const frames = checked.frames ?? framesFromScene(range?.frameStart ?? 1, range?.frameEnd ?? 1, 1)
  const format = (input.format?.toUpperCase() ?? 'PNG') as ImageFormat
  const notes = [...frameListNotes(input), `this machine's Blender ${localVersion} cannot read "${name}" (saved by Blender ${checked.minBlender}): only workers with Blender ${checked.minBlender} or newer take it, the file travels without the files it may link to, and each worker checks the scene when it loads it`]

  const blendPath = resolve(input.blendPath)
  const { size } = await stat(blendPath)
  const built = await buildManifest(blendPath, [])
  const device = input.device?.toUpperCase() === 'GPU' ? 'GPU' : 'CPU'
  const parts: Omit<JobSpec, 'jobId'> = {
    blend: { path: blendPath, sha256: await hashFile(blendPath), size, name },
    manifest: { bytes: built.bytes, sha256: createHash('sha256').update(built.bytes).digest() },
    files: built.manifest.files,
    settings: {
      scene: sceneName,
      format,
      width: 0,
      height: 0,
      engine: input.engine?.toUpperCase() ?? '',
      samples: input.samples ?? 0,
      resolutionPercentage: input.resolutionPercentage ?? 0,
      device: input.device?.toUpperCase() ?? '',
      allowMissing: input.allowMissing === true
    },
    requirements: {
      minBlender: checked.minBlender,
      engine: input.engine?.toUpperCase() ?? '',
      device,
      scripts: input.allowScripts === true,
      jobBytes: totalBytes(built.manifest.files)
    },
    chunks: splitIntoChunks(frames, input.chunkSize)
  }
  const outputDir = resolve(input.outputDir)
  return { spec: { jobId: jobIdOf(parts, outputDir), ...parts }, outputDir, notes }
}

/**
 * Every file the render reads must exist here, or the frames would come
 * back magenta or with objects gone (case B09): refuse, naming them,
 * unless the user accepts that with --allow-missing.
 */
function checkDependencies (input: SubmitInput, info: BlendInfo,
  notes: string[]): void {
  const missing = missingForRender(info.dependencies)
  if (missing.length === 0) return
  const list = missing.map(d => `${d.absolute}${d.users.length > 0 ? ` (${d.kind} used by ${d.users.slice(0, 2).join(', ')})` : ''}`)
  if (input.allowMissing !== true) {
    throw new UsageError(`"${basename(input.blendPath)}" needs ${missing.length === 1 ? 'a file' : `${missing.length} files`} that ${missing.length === 1 ? 'is' : 'are'} not on this machine: ${list.join('; ')}; fix the paths in Blender, or pass --allow-missing to render without ${missing.length === 1 ? 'it' : 'them'}`)
  }
  notes.push(`rendering without ${list.length} missing files (--allow-missing): ${list.join('; ')}`)
}

/** The device the job needs: only Cycles renders on a chosen device. */
function deviceOf (scene: SceneInfo, input: SubmitInput): 'CPU' | 'GPU' {
  const engine = input.engine?.toUpperCase() ?? scene.engine
  const device = input.device?.toUpperCase() ?? scene.device
  return engine === 'CYCLES' && device === 'GPU' ? 'GPU' : 'CPU'
}

/** The job's render settings: the scene's, with the user's overrides. */
function renderSettings (scene: SceneInfo, format: ImageFormat,
  input: SubmitInput, engine: string): JobSettings {
  const size = outputSize(scene, input.resolutionPercentage)
  return {
    scene: scene.name,
    format,
    ...size,
    engine: input.engine?.toUpperCase() ?? '',
    samples: input.samples ?? 0,
    resolutionPercentage: input.resolutionPercentage ?? 0,
    // Asked of another engine, the render script would look for a GPU.
    device: engine === 'CYCLES' ? input.device?.toUpperCase() ?? '' : '',
    allowMissing: input.allowMissing === true
  }
}

/** The size every frame must have, as Blender computes it. */
function outputSize (scene: SceneInfo, percentage: number | undefined): { width: number, height: number } {
  if (percentage === undefined) return { width: scene.width, height: scene.height }
  const scaled = (px: number, pct: number): number => Math.floor(px * pct / 100)
  const cropped = scene.width !== scaled(scene.resolutionX, scene.resolutionPercentage) ||
    scene.height !== scaled(scene.resolutionY, scene.resolutionPercentage)
  if (cropped) {
    throw new UsageError(`scene "${scene.name}" crops its render to a region; --resolution cannot be combined with that yet`)
  }
  const size = { width: scaled(scene.resolutionX, percentage), height: scaled(scene.resolutionY, percentage) }
  if (size.width < 1 || size.height < 1) {
    throw new UsageError(`--resolution ${percentage}% makes frames of ${size.width}x${size.height} pixels, too small for an image`)
  }
  return size
}

/**
 * What the scene would write or need besides its frames: refuse what
 * cannot come back, and say what may render differently.
 */
function checkSceneOutputs (scene: SceneInfo, format: ImageFormat,
  allowScripts: boolean, notes: string[]): void {
  if (scene.fileOutputNodes.length > 0) {
    throw new UsageError(`scene "${scene.name}" has compositor File Output nodes (${scene.fileOutputNodes.join(', ')}) whose files blendnet cannot bring back yet; mute them, or render those passes locally`)
  }
  if (scene.viewLayers.length > 1 && format !== 'OPEN_EXR_MULTILAYER') {
    notes.push(`scene "${scene.name}" renders ${scene.viewLayers.length} view layers (${scene.viewLayers.join(', ')}), but a ${format} frame holds one image: you get what Blender saves for it (the compositor's result, or the first layer); use --format OPEN_EXR_MULTILAYER to keep every layer`)
  }
  if (scene.unbakedSimulations.length > 0) {
    notes.push(`scene "${scene.name}" has simulations that are not baked (${scene.unbakedSimulations.join('; ')}): their frames depend on how the job is cut into chunks and may differ from your own render; bake them in Blender before submitting`)
  }
  if (scene.usesPython.length > 0 && !allowScripts) {
    notes.push(`scene "${scene.name}" needs Python that workers do not run unless you pass --allow-scripts, so frames may differ from your own renders: ${scene.usesPython.join('; ')}`)
  }
}

function totalBytes (files: Array<{ size: number }>): number {
  return files.reduce((sum, f) => sum + f.size, 0)
}

function pickScene (info: BlendInfo, wanted: string | undefined): SceneInfo {
  const name = wanted ?? info.activeScene
  const scene = info.scenes.find(s => s.name === name)
  if (scene === undefined) {
    const names = info.scenes.map(s => `"${s.name}"`).join(', ')
    throw new UsageError(`--scene "${name}" is not in the file; its scenes are ${names}`)
  }
  return scene
}

/** The job's image format: the flag, else the scene's own if it is an
 * image format, else PNG (movies are rendered as frames, see B28). */
function pickFormat (scene: SceneInfo, flag: string | undefined,
  notes: string[]): ImageFormat {
  const upper = flag?.toUpperCase()
  if (upper !== undefined && isImageFormat(upper)) return upper
  if (isImageFormat(scene.fileFormat)) return scene.fileFormat
  notes.push(scene.isMovie
    ? `scene "${scene.name}" is set to write a ${scene.fileFormat} movie; blendnet renders PNG frames instead (encode the movie from them)`
    : `scene "${scene.name}" writes ${scene.fileFormat}, which blendnet does not check; rendering PNG instead (choose with --format)`)
  return 'PNG'
}
