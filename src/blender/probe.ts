/**
 * The health check a worker runs at start: its own Blender renders an
 * 8x8 frame with each engine (scripts/blender/probe.py) and reports its
 * build. Only engines whose frame blendnet finds on disk as a real image
 * are announced, since Blender's word is not a verdict (cases/README.md);
 * a Blender that renders nothing stops the worker before it claims work.
 *
 * A crash in one engine's test (an EEVEE without any GL, say) fails the
 * whole probe, Cycles included: telling the engines apart would take a
 * Blender process per engine, about 0.8 s of start-up each.
 */
import { readFile, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { logger } from '../common/log.js'
import { messageOf } from '../common/errors.js'
import { makeTempDir } from '../common/paths.js'
import { decodePngPixels, type PngPixels } from '../image/png-pixels.js'
import type { GpuDevice, WorkerCapabilities } from '../job/requirements.js'
import { BACKGROUND_FLAGS, runScriptArgs, scriptPath } from './argv.js'
import { withBytecodeCache } from './bytecode.js'
import { BlenderLog } from './chunk-log.js'
import type { BlenderInstall } from './install.js'
import { KILL_GRACE_MS } from './limits.js'
import { blenderWords } from './log-parser.js'
import { sandboxedCommand, signalOfExit, usableMemory, type Sandbox } from './sandbox.js'

export {
  healthSummary, type GpuDevice, type WorkerCapabilities
} from '../job/requirements.js'

const log = logger('blender:probe')

/**
 * The probe takes ~1.5 s here, ~4 s with a cold shader cache (EEVEE
 * compiles its shaders on a software GL). A minute allows for a slow
 * disk; a Blender that needs longer for 8x8 pixels is not healthy.
 */
export const PROBE_TIMEOUT_MS = 60_000

/** The size probe.py renders at. */
const PROBE_SIZE = 8

/** `blendnet-probe: {...}`, the report probe.py prints at the end. */
const REPORT_MARKER = /^blendnet-probe: (\{.*\})$/

/**
 * `blendnet-probe-stage: CYCLES test render`, `...: CUDA device scan`,
 * printed as each step starts.
 */
const STAGE_MARKER = /^blendnet-probe-stage: (.+)$/

/** `blendnet-probe-warning: CUDA device scan failed: ...`. */
const WARNING_MARKER = /^blendnet-probe-warning: (.+)$/

/**
 * The dynamic loader's words when Blender cannot even start:
 * `blender: error while loading shared libraries: libfoo.so.1: cannot
 * open shared object file: No such file or directory` (exit 127).
 */
const LOADER_ERROR = /error while loading shared libraries: [^:\s]+/

/** The loader's and the shell's exit code for "could not run it". */
const CANNOT_START = 127

export interface ProbeOptions {
  /** Default PROBE_TIMEOUT_MS. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Probe in the sandbox chunks will render in, so that a Blender the
   * sandbox breaks stops the worker at start. */
  sandbox?: Sandbox
}

/** This Blender cannot render at all; the worker must not start. */
export class BlenderUnhealthyError extends Error {
  readonly path: string
  /** Why, in a few words: `cannot start: error while loading ...`. */
  readonly reason: string
  readonly logTail: string[]

  constructor (path: string, reason: string, logTail: string[] = []) {
    super(`Blender at "${path}" ${reason}.`)
    this.name = 'BlenderUnhealthyError'
    this.path = path
    this.reason = reason
    this.logTail = logTail
  }
}

/** Runs the probe; throws BlenderUnhealthyError if Blender fails it. */
export async function probeBlender (
  install: BlenderInstall, opts: ProbeOptions = {}
): Promise<WorkerCapabilities> {
  const outDir = await makeTempDir(tmpdir(), 'blendnet-probe-')
  try {
    const timeoutMs = opts.timeoutMs ?? PROBE_TIMEOUT_MS
    const result = await runProbe(install, outDir, timeoutMs, opts)
    if (result.isCanceled) throw opts.signal?.reason ?? new Error('cancelled')

    const report = judgeRun(install, { ...result, timeoutMs, sandboxed: opts.sandbox !== undefined })
    return {
      blenderVersion: report.blenderVersion,
      engines: await workingEngines(install, report.renders, outDir),
      denoisers: report.denoisers,
      gpuDevices: report.gpuDevices,
      ffmpeg: report.ffmpeg,
      cpuCount: availableParallelism(),
      memoryBytes: usableMemory()
    }
  } finally {
    await rm(outDir, { recursive: true, force: true })
  }
}

function probeArgv (outDir: string): string[] {
  return [
    ...BACKGROUND_FLAGS,
    ...runScriptArgs(scriptPath('probe.py'), [outDir])
  ]
}

async function runProbe (
  install: BlenderInstall, outDir: string, timeoutMs: number, opts: ProbeOptions
) {
  const { file, args } = opts.sandbox === undefined
    ? { file: install.path, args: probeArgv(outDir) }
    : sandboxedCommand(opts.sandbox, probeArgv(outDir),
      { readable: [], writable: [outDir], cwd: outDir, fillsCaches: true })
  const run = async (env: NodeJS.ProcessEnv) => await execa(file, args, {
    cwd: outDir,
    env,
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: timeoutMs,
    cancelSignal: opts.signal,
    forceKillAfterDelay: KILL_GRACE_MS
  })
  // Sandboxed, it fills a new cache of this process's own (sandbox.ts).
  return opts.sandbox === undefined ? await withBytecodeCache(run) : await run({})
}

interface ProbeOutcome {
  all?: string
  exitCode?: number
  signal?: string
  timedOut: boolean
  timeoutMs: number
  code?: string
  originalMessage?: string
  sandboxed: boolean
}

/** The report, if the process ended well and printed one. */
function judgeRun (
  install: BlenderInstall, result: ProbeOutcome
): ProbeReport {
  const lines = (result.all ?? '').split('\n')
  const blenderLog = new BlenderLog()
  for (const line of lines) blenderLog.add(line)
  const fail = (reason: string): never => {
    throw new BlenderUnhealthyError(install.path, reason, blenderLog.logTail)
  }

  const problem = processProblem(sandboxOutcome(result), lines, blenderLog)
  if (problem !== undefined) fail(result.sandboxed ? `${problem} (in the bubblewrap sandbox)` : problem)
  logWarnings(lines)
  const report = readReport(lines)
  if (typeof report === 'string') fail(report)
  return report as ProbeReport
}

/** bwrap exits 128 + the signal that killed Blender: name the signal. */
function sandboxOutcome (result: ProbeOutcome): ProbeOutcome {
  const signal = result.sandboxed ? signalOfExit(result.exitCode) : undefined
  return signal === undefined ? result : { ...result, signal, exitCode: undefined }
}

/** Why the process itself went wrong: never started, died, hung. */
function processProblem (
  result: ProbeOutcome, lines: string[], blenderLog: BlenderLog
): string | undefined {
  const stage = stageOf(lines)
  if (result.timedOut) {
    return `did not finish ${stage} within ${result.timeoutMs / 1000} s`
  }
  if (result.signal !== undefined) {
    return `died of ${result.signal} during ${stage}`
  }
  if (result.exitCode === undefined) {
    return `cannot start: ${startError(result)}`
  }

  const code = result.exitCode
  const loader = lines.map(l => LOADER_ERROR.exec(l)).find(m => m !== null)
  if (loader != null) return `cannot start: ${loader[0]} (exit ${code})`
  if (code === 0) return undefined
  const words = failureWords(lines, blenderLog)
  return code === CANNOT_START
    ? `cannot start: ${words} (exit ${code})`
    : `failed ${stage}: ${words} (exit ${code})`
}

/** `its CYCLES test render`, from the last stage line seen. */
function stageOf (lines: string[]): string {
  const stages = lines.map(l => STAGE_MARKER.exec(l)?.[1])
    .filter(s => s !== undefined)
  return `its ${stages.at(-1) ?? 'self-test'}`
}

function startError (result: ProbeOutcome): string {
  if (result.code === 'ENOENT') return 'it does not exist'
  if (result.code === 'EACCES') return 'it is not executable'
  return result.originalMessage ?? 'unknown error'
}

/** What the probe let pass but the operator should hear about. */
function logWarnings (lines: string[]): void {
  for (const line of lines) {
    const warning = WARNING_MARKER.exec(line)?.[1]
    if (warning !== undefined) log.warn('probe warning', { warning })
  }
}

/** Blender's own words for a failure, else its last line of output. */
function failureWords (lines: string[], blenderLog: BlenderLog): string {
  const said = blenderLog.exceptions[0] ?? blenderLog.errors[0] ??
    blenderLog.problems[0]
  return said === undefined ? lastWords(lines) : blenderWords(said)
}

function lastWords (lines: string[]): string {
  const last = lines.filter(l => l.trim() !== '').at(-1)
  return last === undefined
    ? 'it printed nothing'
    : `it last printed "${last.trim().slice(0, 80)}"`
}

/** What probe.py reports, before blendnet has checked the images. */
interface ProbeReport {
  blenderVersion: string
  renders: EngineRender[]
  denoisers: string[]
  gpuDevices: GpuDevice[]
  ffmpeg: boolean
}

interface EngineRender {
  engine: string
  /** What Blender raised, if the render raised. */
  error: string | null
}

/** The report, or why there is none to read. */
function readReport (lines: string[]): ProbeReport | string {
  const found = lines.map(l => REPORT_MARKER.exec(l)).find(m => m !== null)
  if (found == null) return `printed no probe report (${lastWords(lines)})`
  try {
    return checkReport(JSON.parse(found[1]))
  } catch (err) {
    return `printed a probe report blendnet cannot read (${messageOf(err)})`
  }
}

const VERSION = /^\d+\.\d+\.\d+$/

/** Engine names become file names: capitals and `_` only. */
const ENGINE_NAME = /^[A-Z][A-Z0-9_]*$/

/** Validates at the boundary, keeping only the fields blendnet knows. */
function checkReport (value: unknown): ProbeReport {
  const r = (value ?? {}) as Record<string, unknown>
  const report = {
    blenderVersion: r.blenderVersion, renders: r.renders,
    denoisers: r.denoisers, gpuDevices: r.gpuDevices, ffmpeg: r.ffmpeg
  }
  need(isString(report.blenderVersion) &&
    VERSION.test(report.blenderVersion), 'blenderVersion')
  need(arrayOf(report.renders, isEngineRender), 'renders')
  need(arrayOf(report.denoisers, isString), 'denoisers')
  need(arrayOf(report.gpuDevices, isGpuDevice), 'gpuDevices')
  need(typeof report.ffmpeg === 'boolean', 'ffmpeg')
  return report as ProbeReport
}

function need (ok: boolean, field: string): void {
  if (!ok) throw new Error(`bad or missing "${field}"`)
}

function isString (v: unknown): v is string {
  return typeof v === 'string'
}

function arrayOf (v: unknown, isItem: (item: unknown) => boolean): boolean {
  return Array.isArray(v) && v.every(isItem)
}

function isEngineRender (v: unknown): boolean {
  const r = (v ?? {}) as Record<string, unknown>
  return isString(r.engine) && ENGINE_NAME.test(r.engine) &&
    (r.error === null || isString(r.error))
}

function isGpuDevice (v: unknown): boolean {
  const d = (v ?? {}) as Record<string, unknown>
  return isString(d.type) && isString(d.name)
}

/**
 * The engines whose test frame is a real 8x8 image; the others are
 * logged. None at all means this Blender cannot render.
 */
async function workingEngines (
  install: BlenderInstall, renders: EngineRender[], outDir: string
): Promise<string[]> {
  const working: string[] = []
  const problems: string[] = []
  for (const render of renders) {
    const problem = await renderProblem(render, outDir)
    if (problem === undefined) working.push(render.engine)
    else problems.push(`its ${render.engine} test frame ${problem}`)
  }

  if (working.length > 0) {
    for (const p of problems) log.warn('engine left out', { problem: p })
    return working
  }
  throw new BlenderUnhealthyError(install.path,
    `cannot render: ${problems[0] ?? 'it tried no engine'}`)
}

async function renderProblem (
  render: EngineRender, outDir: string
): Promise<string | undefined> {
  if (render.error !== null) {
    return `failed: ${blenderWords(render.error)}`
  }
  let bytes: Uint8Array
  try {
    bytes = await readFile(join(outDir, `${render.engine}.png`))
  } catch {
    return 'was never saved'
  }
  return imageProblem(bytes)
}

function imageProblem (bytes: Uint8Array): string | undefined {
  let image: PngPixels
  try {
    image = decodePngPixels(bytes)
  } catch (err) {
    return `is not a valid PNG (${messageOf(err)})`
  }
  if (image.width !== PROBE_SIZE || image.height !== PROBE_SIZE) {
    return `is ${image.width}x${image.height}, not ` +
      `${PROBE_SIZE}x${PROBE_SIZE}`
  }
  return isAllBlack(image) ? 'is all black' : undefined
}

/**
 * The startup scene's world is grey, so every pixel of a good frame is
 * lit; an all-black frame is what a broken kernel or GL context gives.
 */
function isAllBlack (image: PngPixels): boolean {
  const colours = image.channels >= 3 ? 3 : 1
  for (let i = 0; i < image.data.length; i += image.channels) {
    for (let c = 0; c < colours; c++) if (image.data[i + c] !== 0) return false
  }
  return true
}
