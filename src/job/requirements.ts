/**
 * What a job needs from a worker's Blender, and what a worker's Blender
 * was found to offer (src/blender/probe.ts). A worker claims only jobs
 * it can render exactly as specified: a Blender without a denoiser, a
 * GPU or a new enough version must not silently render something else
 * (cases B19, B22).
 */
import { formatSize } from '../common/sizes.js'
import { atLeastVersion, compareVersions } from '../common/versions.js'

export interface GpuDevice {
  /** The Cycles device type: 'CUDA', 'OPTIX', 'HIP', 'ONEAPI', 'METAL'. */
  type: string
  name: string
}

/** What a worker's Blender proved it can do, by rendering. */
export interface WorkerCapabilities {
  /** 'major.minor.patch', e.g. '3.4.1'. */
  blenderVersion: string
  /** Engines whose test render gave an image: 'CYCLES', ... */
  engines: string[]
  /** Cycles denoisers: 'OPENIMAGEDENOISE', 'OPTIX'. */
  denoisers: string[]
  /** Cycles devices besides the CPU; empty on a CPU-only worker. */
  gpuDevices: GpuDevice[]
  /** Built with FFmpeg (movie input and output). */
  ffmpeg: boolean
  cpuCount: number
  /** Memory this process may use: RAM, or a lower cgroup limit. */
  memoryBytes: number
  /** Its operator lets it run Python stored in job files (`--allow-scripts`). */
  scripts?: boolean
  /** The most bytes of job files it takes now; 0 or absent: no limit. */
  maxJobBytes?: number
  /** Takes jobs only from these submitters' peer IDs; empty or absent: any. */
  coordinators?: string[]
}

export interface JobRequirements {
  /** The oldest Blender that reads the file, 'major.minor'. */
  minBlender: string
  /**
   * The scene's render engine: 'CYCLES', 'BLENDER_EEVEE', ...; '' when
   * unknown at submit (the worker's Blender then checks the scene).
   */
  engine: string
  device: 'CPU' | 'GPU'
  /** A denoiser the scene uses, e.g. 'OPENIMAGEDENOISE'. */
  denoiser?: string
  /** Blender may run the Python stored in the file (`--allow-scripts`). */
  scripts?: boolean
  /** All the job's files together, in bytes. */
  jobBytes?: number
}

const GPU_KINDS = 'CUDA/OptiX/HIP/oneAPI/Metal'

/**
 * One short phrase per requirement this worker does not meet, such as
 * `needs Blender 5.0, has 3.4.1`; empty when it can render the job.
 */
export function unmetRequirements (
  req: JobRequirements, caps: WorkerCapabilities, coordinator?: string
): string[] {
  const unmet: string[] = []
  const only = caps.coordinators ?? []
  if (coordinator !== undefined && only.length > 0 && !only.includes(coordinator)) {
    unmet.push('takes jobs only from other submitters (its --allow-coordinator list)')
  }
  if (!atLeastVersion(caps.blenderVersion, req.minBlender)) {
    unmet.push(`needs Blender ${req.minBlender}, has ${caps.blenderVersion}`)
  }
  if (!hasEngine(caps, req.engine)) {
    unmet.push(`needs ${req.engine === '' ? 'a working engine' : `engine ${req.engine}`}, has ${listOr(caps.engines)}`)
  }
  if (req.device === 'GPU' && caps.gpuDevices.length === 0) {
    unmet.push(`needs a GPU (${GPU_KINDS}), has none`)
  }
  if (req.denoiser !== undefined && !caps.denoisers.includes(req.denoiser)) {
    unmet.push(`needs denoiser ${req.denoiser}, has ${listOr(caps.denoisers)}`)
  }
  if (req.scripts === true && caps.scripts !== true) {
    unmet.push('needs Python scripts allowed, allows none')
  }
  const room = caps.maxJobBytes ?? 0
  if (room > 0 && (req.jobBytes ?? 0) > room) {
    // The room is the lesser of free disk space and --max-job-size.
    unmet.push(`needs ${formatSize(req.jobBytes ?? 0)} for its files, has room for ${room <= 1 ? 'none' : formatSize(room)} (free disk space, or the worker's --max-job-size)`)
  }
  return unmet
}

/**
 * Blender 4.2 to 4.5 call EEVEE 'BLENDER_EEVEE_NEXT'; older and newer
 * ones 'BLENDER_EEVEE'. The version check already says whether a
 * worker's Blender can read the file; either name means "has EEVEE".
 */
const ENGINE_ALIASES: Record<string, string> = {
  BLENDER_EEVEE_NEXT: 'BLENDER_EEVEE'
}

function engineKey (engine: string): string {
  return ENGINE_ALIASES[engine] ?? engine
}

function hasEngine (caps: WorkerCapabilities, engine: string): boolean {
  if (engine === '') return caps.engines.length > 0
  return caps.engines.some(e => engineKey(e) === engineKey(engine))
}

function listOr (names: string[], none = 'none', separator = '/'): string {
  return names.length === 0 ? none : names.join(separator)
}

/**
 * What a set of workers offers, in one line, for telling a user why no
 * worker takes their job: `2 workers: Blender 3.4.1, CYCLES/BLENDER_EEVEE,
 * CPU only, no denoiser`.
 */
export function describeOffer (all: WorkerCapabilities[]): string {
  if (all.length === 0) return 'no workers'

  const versions = distinct(all.map(c => c.blenderVersion)).sort(byVersion)
  const engines = distinct(all.flatMap(c => c.engines))
  const denoisers = distinct(all.flatMap(c => c.denoisers))
  return [
    `${all.length} worker${all.length === 1 ? '' : 's'}: ` +
      `Blender ${versions.join('/')}`,
    listOr(engines, 'no working engine'),
    gpuOffer(all),
    denoisers.length === 0 ? 'no denoiser' : `denoiser ${listOr(denoisers)}`,
    scriptsOffer(all)
  ].join(', ')
}

/** `CPU only`, `GPU (CUDA/OPTIX)`, or `GPU (OPTIX) on 1 of 3`. */
function gpuOffer (all: WorkerCapabilities[]): string {
  const withGpu = all.filter(c => c.gpuDevices.length > 0)
  if (withGpu.length === 0) return 'CPU only'

  const types = distinct(withGpu.flatMap(c => c.gpuDevices.map(d => d.type)))
  const where = withGpu.length === all.length
    ? ''
    : ` on ${withGpu.length} of ${all.length}`
  return `GPU (${types.join('/')})${where}`
}

/** `no scripts`, `scripts allowed`, or `scripts allowed on 1 of 3`. */
function scriptsOffer (all: WorkerCapabilities[]): string {
  const allowing = all.filter(c => c.scripts === true).length
  if (allowing === 0) return 'no scripts'
  return allowing === all.length ? 'scripts allowed' : `scripts allowed on ${allowing} of ${all.length}`
}

/** Sorted, without repeats, so the same offer always reads the same. */
function distinct (values: string[]): string[] {
  return [...new Set(values)].sort()
}

/** Oldest first: '3.4.1' before '10.0.0'. */
function byVersion (a: string, b: string): number {
  try {
    return compareVersions(a, b)
  } catch {
    return a.localeCompare(b)
  }
}

const GIB = 1024 ** 3

/**
 * One worker in one line, for its start-up banner: `Blender 3.4.1:
 * CYCLES, BLENDER_EEVEE; CPU only (2 cores, 23.5 GiB); no denoiser;
 * FFmpeg`.
 */
export function healthSummary (caps: WorkerCapabilities): string {
  const machine = `${caps.cpuCount} cores, ` +
    `${(caps.memoryBytes / GIB).toFixed(1)} GiB`
  const devices = caps.gpuDevices.length === 0
    ? `CPU only (${machine})`
    : `${gpuList(caps.gpuDevices)} and CPU (${machine})`
  const denoisers = caps.denoisers.length === 0
    ? 'no denoiser'
    : `denoiser ${caps.denoisers.join(', ')}`
  return `Blender ${caps.blenderVersion}: ` +
    `${listOr(caps.engines, 'no engine', ', ')}; ${devices}; ` +
    `${denoisers}; ${caps.ffmpeg ? 'FFmpeg' : 'no FFmpeg'}` +
    (caps.scripts === true ? '; runs job scripts (--allow-scripts)' : '')
}

/** `NVIDIA RTX A4000 (CUDA/OPTIX)`: Cycles lists a card once per API. */
function gpuList (devices: GpuDevice[]): string {
  const types = new Map<string, string[]>()
  for (const { type, name } of devices) {
    types.set(name, [...(types.get(name) ?? []), type])
  }
  return [...types].map(([name, t]) => `${name} (${t.join('/')})`).join(', ')
}
