/**
 * Blender inside bubblewrap (`bwrap`): a file's Python, when a job may run
 * it, and any exploit of Blender's file readers run with no network, a
 * read-only system, no view of the user's files, a clean environment and
 * limits on memory, CPU time, processes and file size.
 *
 * The sandbox's root is an empty tmpfs, remounted read-only once set up;
 * only what Blender needs is bound into it. So the home folder, the rest
 * of the work dir and the worker's key are absent rather than hidden: a
 * path under $HOME that is bound (a chunk dir in ~/.cache) shows only
 * itself. Limits are set by util-linux `prlimit` inside the sandbox, soft
 * and hard, so that Blender cannot raise them again.
 */
import { execFile } from 'node:child_process'
import { constants as fsConstants, lstatSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { access, readFile, realpath } from 'node:fs/promises'
import { availableParallelism, constants as osConstants, homedir, tmpdir, totalmem } from 'node:os'
import { delimiter, dirname, isAbsolute, join, relative } from 'node:path'
import { promisify } from 'node:util'
import { UsageError } from '../common/errors.js'
import { isAlive } from '../common/pid.js'
import { logger } from '../common/log.js'
import { makeTempDir, packagePath } from '../common/paths.js'
import type { BlenderInstall } from './install.js'

const log = logger('blender:sandbox')

export const SANDBOX_MODES = ['auto', 'bwrap', 'none'] as const
export type SandboxMode = typeof SANDBOX_MODES[number]

export interface SandboxLimits {
  /** RLIMIT_DATA: heap and private writable mappings. Unlike RLIMIT_AS it
   * ignores address space merely reserved (GPU drivers reserve a lot). */
  memoryBytes: number
  /** RLIMIT_CPU over all threads: SIGXCPU, then SIGKILL a minute later. */
  cpuSeconds: number
  /** RLIMIT_NPROC, threads included, counted inside the sandbox's user
   * namespace. Linux does not enforce it for root. */
  processes: number
  /** RLIMIT_FSIZE: the largest file Blender may write (SIGXFSZ beyond). */
  fileBytes: number
  /** The private /tmp is a tmpfs: it takes memory, not disk. */
  tmpBytes: number
}

export interface Sandbox {
  /** Absolute path of bwrap. */
  bwrap: string
  /** Blender's real path: its folder is bound, so symlinks are resolved. */
  blender: string
  /** Bound read-only besides the system: Blender's folder, blendnet's
   * scripts/blender. */
  readOnly: string[]
  /** GPU device nodes found at start, passed through. */
  devices: string[]
  limits: SandboxLimits
  /**
   * Mesa's shader cache as the probe left it (EEVEE and Workbench on a
   * software GL compile seconds of shaders). Each run gets a private copy:
   * a cache shared across runs would let one job plant compiled code that
   * another job's Blender runs.
   */
  shaderSeed?: string
  /**
   * Blender's Python bytecode as the probe compiled it (bytecode.ts),
   * read-only for every later run, for the same reason.
   */
  bytecode?: string
}

/** What one run may see beyond the system. */
export interface SandboxMounts {
  /** Read-only, skipped when missing: the .blend's folder, job files. */
  readable: string[]
  /** Writable, must exist: the chunk dir. */
  writable: string[]
  cwd: string
  /** The probe: writes the shader and bytecode caches later runs start from. */
  fillsCaches?: boolean
}

export interface SandboxChoice {
  sandbox?: Sandbox
  /** For the worker's start-up line: `sandbox: bubblewrap`, `no sandbox (…)`. */
  summary: string
}

const GIB = 1024 ** 3
const DAY_SECONDS = 24 * 3600
const CPU_GRACE_SECONDS = 60
const CHECK_TIMEOUT_MS = 15_000
/** Where a run's copy of the shader cache lives, in its private /tmp. */
const PRIVATE_SHADER_CACHE = '/tmp/shader-cache'

/**
 * Defaults scaled to the machine: 7/8 of its memory (the rest for the
 * system and the worker), a day of every core, 64 + 16 threads per core
 * (Cycles, TBB and llvmpipe each start one per core), 16 GiB per file
 * and a /tmp of up to 1 GiB.
 */
export function defaultLimits (
  cpus = availableParallelism(), memoryBytes = usableMemory()
): SandboxLimits {
  return {
    memoryBytes: Math.floor(memoryBytes / 8 * 7),
    cpuSeconds: cpus * DAY_SECONDS,
    processes: 64 + 16 * cpus,
    fileBytes: 16 * GIB,
    tmpBytes: Math.min(GIB, Math.floor(memoryBytes / 8))
  }
}

/** RAM, or the container's memory limit when that is lower. */
export function usableMemory (): number {
  const limit = process.constrainedMemory()
  const total = totalmem()
  return limit > 0 && limit < total ? limit : total
}

/** The `--sandbox` flag's value; `auto` when not given. */
export function parseSandboxMode (text: string | undefined): SandboxMode {
  if (text === undefined) return 'auto'
  const mode = SANDBOX_MODES.find(m => m === text)
  if (mode === undefined) {
    throw new UsageError(`--sandbox must be ${SANDBOX_MODES.join(', ')}, not "${text}"`)
  }
  return mode
}

/**
 * The worker's `--sandbox`: `none` runs Blender as it is; `auto` uses
 * bwrap when it runs here and says why not otherwise; `bwrap` insists
 * (a UsageError, exit 2, when it cannot run).
 */
export async function chooseSandbox (
  mode: SandboxMode, blender: BlenderInstall, limits = defaultLimits()
): Promise<SandboxChoice> {
  if (mode === 'none') return { summary: 'no sandbox (--sandbox none)' }
  const found = await findSandbox(blender, limits)
  if (typeof found !== 'string') return { sandbox: found, summary: 'sandbox: bubblewrap' }
  if (mode === 'bwrap') throw new UsageError(`--sandbox bwrap: ${found}.`)
  log.warn('Blender runs without a sandbox', { reason: found })
  return { summary: `no sandbox (${found})` }
}

/** A sandbox that was just seen to work, or why there is none. */
export async function findSandbox (
  blender: BlenderInstall, limits = defaultLimits()
): Promise<Sandbox | string> {
  if (process.platform !== 'linux') return 'bubblewrap needs Linux'
  const bwrap = await onPath('bwrap')
  if (bwrap === undefined) return 'bwrap not found'
  const real = await onPath(blender.path).then(p => p === undefined ? undefined : realpath(p))
  if (real === undefined) return `cannot find Blender at "${blender.path}"`
  const home = homedir()
  const installDir = dirname(real)
  if (isInside(home, installDir)) {
    return `Blender's folder ${installDir} holds the home folder`
  }
  const sandbox: Sandbox = {
    bwrap,
    blender: real,
    readOnly: [installDir, packagePath('scripts', 'blender')]
      .filter(dir => !SYSTEM_DIRS.some(sys => isInside(dir, sys))),
    devices: gpuDevices(),
    limits: await clampToHardLimits(limits),
    shaderSeed: await newCacheDir(tmpdir(), 'shaders'),
    bytecode: await newCacheDir(tmpdir(), 'bytecode')
  }
  const problem = await checkSandbox(sandbox)
  if (problem !== undefined) {
    for (const dir of [sandbox.shaderSeed, sandbox.bytecode]) {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    }
  }
  return problem ?? sandbox
}

/**
 * A folder the probe fills for later runs (`blendnet-shaders-…`,
 * `blendnet-bytecode-…`), removed when this process exits, and named for
 * it so that a worker killed before that leaves one a later start
 * removes (if it may: another user's stays).
 */
export async function newCacheDir (parent: string, kind: 'shaders' | 'bytecode'): Promise<string> {
  for (const name of safeReaddir(parent)) {
    const pid = CACHE_NAME.exec(name)?.[1]
    if (pid !== undefined && !isAlive(Number(pid))) {
      try { rmSync(join(parent, name), { recursive: true, force: true }) } catch {}
    }
  }
  const dir = await makeTempDir(parent, `blendnet-${kind}-${process.pid}-`)
  process.once('exit', () => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

const CACHE_NAME = /^blendnet-(?:shaders|bytecode)-(\d+)-\w+$/

/** Runs `true` exactly as Blender would run: user namespaces may be off. */
async function checkSandbox (sandbox: Sandbox): Promise<string | undefined> {
  const args = [...bwrapArgs(sandbox, { readable: [], writable: [], cwd: '/' }),
    '--', ...limitArgs(sandbox.limits), 'true']
  try {
    await promisify(execFile)(sandbox.bwrap, args, { timeout: CHECK_TIMEOUT_MS })
    return undefined
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    // `bwrap: No permissions to creating new namespace, ...` as a clause.
    const said = ((e.stderr ?? '').trim().split('\n')[0] ?? '')
      .replace(/^bwrap: /, '').replace(/\.$/, '')
    return `bwrap cannot run here: ${said !== '' ? said : e.message}`
  }
}

/** bwrap and prlimit around a Blender argv. */
export function sandboxedCommand (
  sandbox: Sandbox, argv: string[], mounts: SandboxMounts,
  env: NodeJS.ProcessEnv = process.env
): { file: string, args: string[] } {
  return {
    file: sandbox.bwrap,
    args: [...bwrapArgs(sandbox, mounts, env), '--',
      ...limitArgs(sandbox.limits), ...shaderCopy(sandbox, mounts),
      sandbox.blender, ...argv]
  }
}

/** A shell that copies the probe's shaders into the private /tmp, then
 * becomes Blender. No `2>/dev/null`: where the host's /dev/null cannot be
 * opened without privileges, the shell would skip the copy silently. */
function shaderCopy (sandbox: Sandbox, mounts: SandboxMounts): string[] {
  if (sandbox.shaderSeed === undefined || mounts.fillsCaches === true) return []
  return ['sh', '-c', 'cp -R "$0" "$MESA_SHADER_CACHE_DIR"; exec "$@"',
    sandbox.shaderSeed]
}

/** The system, read-only; `/bin` and the like as on the host (links or dirs). */
const SYSTEM_DIRS = ['/usr']
const LINKABLE_DIRS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']

/**
 * The little of /etc Blender and its libraries read: the loader's cache,
 * Debian's alternatives (numpy's BLAS), fonts, the time zone, GL and
 * Vulkan driver lists. Not passwd, hosts or anything holding secrets.
 */
const ETC_ENTRIES = [
  'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'alternatives', 'fonts',
  'localtime', 'drirc', 'glvnd', 'vulkan', 'OpenCL'
]

/** Device selectors an operator pins a worker to its GPUs with. */
const KEPT_ENV = ['CUDA_VISIBLE_DEVICES', 'HIP_VISIBLE_DEVICES', 'ROCR_VISIBLE_DEVICES']

/** Everything before `--`: namespaces, mounts, environment. */
export function bwrapArgs (
  sandbox: Sandbox, mounts: SandboxMounts, env: NodeJS.ProcessEnv = process.env
): string[] {
  const args = [
    // Every namespace, the network's included: the sandbox's 127.0.0.1
    // is its own. No nested user namespaces, no capabilities, no tty.
    '--unshare-all', '--unshare-user', '--disable-userns', '--cap-drop', 'ALL',
    '--die-with-parent', '--new-session'
  ]
  for (const dir of SYSTEM_DIRS) args.push('--ro-bind', dir, dir)
  for (const dir of LINKABLE_DIRS) args.push(...hostLayout(dir))
  for (const entry of ETC_ENTRIES) args.push('--ro-bind-try', `/etc/${entry}`, `/etc/${entry}`)
  // Blender lists mounts at start ("could not get a list of mounted
  // file-systems" otherwise): the sandbox's own.
  args.push('--symlink', '../proc/self/mounts', '/etc/mtab')
  args.push('--dev', '/dev')
  for (const device of sandbox.devices) args.push('--dev-bind', device, device)
  // Cycles sizes its thread pool from these; GPU drivers enumerate
  // devices through the rest of /sys.
  if (sandbox.devices.length > 0) args.push('--ro-bind', '/sys', '/sys')
  else {
    for (const dir of ['/sys/devices/system/cpu', '/sys/devices/system/node']) {
      args.push('--ro-bind-try', dir, dir)
    }
  }
  args.push('--proc', '/proc', '--size', String(sandbox.limits.tmpBytes), '--tmpfs', '/tmp')
  // After the tmpfs: the probe's folder lives under /tmp.
  for (const dir of [...sandbox.readOnly, ...mounts.readable]) args.push('--ro-bind-try', dir, dir)
  for (const dir of mounts.writable) args.push('--bind', dir, dir)
  const fills = mounts.fillsCaches === true
  const { shaderSeed: seed, bytecode } = sandbox
  for (const dir of [seed, bytecode]) {
    if (dir !== undefined) args.push(fills ? '--bind' : '--ro-bind', dir, dir)
  }
  // The folders bwrap made for the binds above stay empty and read-only.
  args.push('--remount-ro', '/', '--chdir', mounts.cwd)
  args.push('--clearenv', '--setenv', 'PATH', '/usr/bin:/bin',
    '--setenv', 'HOME', '/tmp', '--setenv', 'TMPDIR', '/tmp',
    '--setenv', 'LANG', 'C.UTF-8')
  if (seed !== undefined) {
    args.push('--setenv', 'MESA_SHADER_CACHE_DIR', fills ? seed : PRIVATE_SHADER_CACHE)
  }
  // Read-only but for the probe: Python skips writing where it cannot.
  if (bytecode !== undefined) args.push('--setenv', 'PYTHONPYCACHEPREFIX', bytecode)
  for (const name of KEPT_ENV) {
    const value = env[name]
    if (value !== undefined) args.push('--setenv', name, value)
  }
  return args
}

/** prlimit, soft and hard (CPU: SIGXCPU first, so the log says why). */
export function limitArgs (limits: SandboxLimits): string[] {
  return ['prlimit',
    `--data=${limits.memoryBytes}`,
    `--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + CPU_GRACE_SECONDS}`,
    `--nproc=${limits.processes}`,
    `--fsize=${limits.fileBytes}`,
    // A crashed Blender would leave gigabytes of core in the chunk dir.
    '--core=0',
    '--']
}

function hostLayout (dir: string): string[] {
  try {
    const stat = lstatSync(dir)
    if (stat.isSymbolicLink()) return ['--symlink', readlinkSync(dir), dir]
    if (stat.isDirectory()) return ['--ro-bind', dir, dir]
  } catch {}
  return []
}

/** /dev/dri (Mesa, EEVEE on a GPU), NVIDIA's and AMD's compute nodes. */
function gpuDevices (): string[] {
  const devices: string[] = []
  for (const name of safeReaddir('/dev')) {
    if (name === 'dri' || name === 'kfd' || name.startsWith('nvidia')) devices.push(`/dev/${name}`)
  }
  return devices.sort()
}

function safeReaddir (dir: string): string[] {
  try { return readdirSync(dir) } catch { return [] }
}

/**
 * A sandboxed Blender killed by a signal shows as bwrap exiting 128 +
 * the signal; the verdict wants the signal's name (SIGSEGV, SIGXCPU).
 */
export function signalOfExit (exitCode: number | undefined): string | undefined {
  if (exitCode === undefined || exitCode <= 128) return undefined
  const number = exitCode - 128
  return Object.entries(osConstants.signals).find(([, n]) => n === number)?.[0]
}

const LIMIT_NAMES: Record<keyof Omit<SandboxLimits, 'tmpBytes'>, string> = {
  memoryBytes: 'Max data size',
  cpuSeconds: 'Max cpu time',
  processes: 'Max processes',
  fileBytes: 'Max file size'
}

/** prlimit cannot raise a hard limit: ask no more than this process has. */
async function clampToHardLimits (limits: SandboxLimits): Promise<SandboxLimits> {
  const table = await readFile('/proc/self/limits', 'utf8').catch(() => '')
  const clamped = { ...limits }
  for (const [key, name] of Object.entries(LIMIT_NAMES) as Array<[keyof typeof LIMIT_NAMES, string]>) {
    const hard = hardLimit(table, name)
    if (hard !== undefined) {
      // The CPU's hard limit is a minute past the soft one.
      const slack = key === 'cpuSeconds' ? CPU_GRACE_SECONDS : 0
      clamped[key] = Math.max(1, Math.min(limits[key], hard - slack))
    }
  }
  return clamped
}

/** The hard column of /proc/self/limits; undefined when unlimited. */
export function hardLimit (table: string, name: string): number | undefined {
  const line = table.split('\n').find(l => l.startsWith(name))
  const hard = line?.slice(name.length).trim().split(/\s+/)[1]
  return hard === undefined || hard === 'unlimited' ? undefined : Number(hard)
}

/** An executable path, or a name looked up on PATH. */
async function onPath (name: string): Promise<string | undefined> {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '').split(delimiter).filter(d => d !== '').map(d => join(d, name))
  for (const path of candidates) {
    if (await access(path, fsConstants.X_OK).then(() => true, () => false)) return path
  }
  return undefined
}

/** `path` is `dir` or below it. */
function isInside (path: string, dir: string): boolean {
  const rel = relative(dir, path)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}
