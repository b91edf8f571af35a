/**
 * One Blender process for one chunk: its output streams line by line into
 * the chunk's log file and into the `BlenderLog` that judges it. execa
 * owns the timeout, the cancel and the kill (SIGTERM, then SIGKILL); a
 * watch on the output stops a Blender that falls silent the same way.
 * The warm sessions of session.ts start and follow Blender with the same
 * parts.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { execa } from 'execa'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import { frameFileName, type ImageFormat } from '../job/naming.js'
import { bytecodeEnv, bytecodeCacheDir } from './bytecode.js'
import { CHUNK_LOG_NAME } from './chunk-files.js'
import type { BlenderLog } from './chunk-log.js'
import type { ProcessOutcome } from './chunk-verdict.js'
import type { BlenderInstall } from './install.js'
import { KILL_GRACE_MS } from './limits.js'
import { sandboxedCommand, signalOfExit, type Sandbox } from './sandbox.js'

const log = logger('blender:process')

export interface RunOptions {
  chunkDir: string
  frames: number[]
  format: ImageFormat
  timeoutMs?: number
  /** Stop Blender once it prints no line for this long; 0: never. */
  hangTimeoutMs?: number
  signal?: AbortSignal
  onFrameSaved?: (frame: number, path: string) => void
  onLogLine?: (line: string) => void
  /** Run Blender in this sandbox, writing only to the chunk dir. */
  sandbox?: Sandbox
  /** What the sandboxed Blender may read: the .blend's folder, job files. */
  readable?: string[]
}

export interface BlenderRun {
  outcome: ProcessOutcome
  logPath: string
}

export async function runBlender (
  blender: BlenderInstall, argv: string[], opts: RunOptions,
  blenderLog: BlenderLog
): Promise<BlenderRun> {
  const logPath = join(opts.chunkDir, CHUNK_LOG_NAME)
  const file = openLog(logPath)
  const subprocess = startBlender(blender, argv, { ...opts, dir: opts.chunkDir })
  const { result, hung } = await followOutput(subprocess, opts,
    lineHandler(opts, blenderLog, file))
  await closeLog(file)
  return { outcome: outcomeOf(result, opts, hung), logPath }
}

/** The chunk's `blender.log`; a write error surfaces in closeLog(). */
export function openLog (path: string): WriteStream {
  const file = createWriteStream(path)
  file.on('error', () => {})
  return file
}

export interface StartOptions {
  /** The one folder Blender may write to, and its working dir. */
  dir: string
  sandbox?: Sandbox
  readable?: string[]
  timeoutMs?: number
  signal?: AbortSignal
  /** A warm session reads its requests on stdin. */
  stdin?: 'ignore' | 'pipe'
}

export function startBlender (
  blender: BlenderInstall, argv: string[], opts: StartOptions
) {
  const { file, args } = opts.sandbox === undefined
    ? { file: blender.path, args: argv }
    : sandboxedCommand(opts.sandbox, argv,
      { readable: opts.readable ?? [], writable: [opts.dir], cwd: opts.dir })
  return execa(file, args, {
    // A relative output path in the scene would land here, where the
    // verdict sees it as an extra file (case B29).
    cwd: opts.dir,
    env: opts.sandbox === undefined ? bytecodeEnv(bytecodeCacheDir()) : {},
    stdin: opts.stdin ?? 'ignore',
    all: true,
    buffer: false,
    reject: false,
    timeout: opts.timeoutMs,
    cancelSignal: opts.signal,
    forceKillAfterDelay: KILL_GRACE_MS
  })
}

export type BlenderProcess = ReturnType<typeof startBlender>

/**
 * Feeds Blender's lines to `onLine` until it exits. Every line counts as
 * progress; after `hangTimeoutMs` without one, Blender gets the kill a
 * timeout gives: SIGTERM, then SIGKILL after KILL_GRACE_MS.
 */
async function followOutput (
  subprocess: BlenderProcess, opts: RunOptions,
  onLine: (line: string) => void
): Promise<{ result: ExecaOutcome, hung: boolean }> {
  let hung = false
  const silence = new SilenceWatch(opts.hangTimeoutMs ?? 0, () => {
    // Silent because the time limit or a cancel is already killing it.
    if (subprocess.killed) return
    hung = true
    log.warn('Blender hung, stopping it', { pid: subprocess.pid,
      silentMs: opts.hangTimeoutMs, dir: opts.chunkDir })
    subprocess.kill('SIGTERM')
  })
  try {
    await readLines(subprocess, line => { silence.heard(); onLine(line) })
    return { result: await subprocess, hung }
  } finally {
    silence.stop()
  }
}

/** Calls `onSilence` once, when `heard` was not called for `ms` (0: never). */
export class SilenceWatch {
  private fired = false
  private readonly timer: NodeJS.Timeout | undefined

  constructor (ms: number, onSilence: () => void) {
    if (ms <= 0) return
    this.timer = setTimeout(() => { this.fired = true; onSilence() }, ms)
  }

  heard (): void {
    // refresh() would re-arm a timer that already fired.
    if (!this.fired) this.timer?.refresh()
  }

  stop (): void {
    clearTimeout(this.timer)
  }
}

/**
 * After Blender exits, how long its output may stay open. A process it
 * left behind (a wrapper script's child, a sandbox that outlived its
 * parent) can hold the pipe for ever: the chunk must not wait for it.
 */
const OUTPUT_AFTER_EXIT_MS = 2000

export async function readLines (
  subprocess: BlenderProcess, onLine: (line: string) => void
): Promise<void> {
  let cutOff = false
  let timer: NodeJS.Timeout | undefined
  const onExit = (): void => {
    timer = setTimeout(() => {
      cutOff = true
      log.warn('Blender exited, but a process it left holds its output; not waiting for it', { pid: subprocess.pid })
      subprocess.stdout?.destroy()
      subprocess.stderr?.destroy()
    }, OUTPUT_AFTER_EXIT_MS)
  }
  subprocess.once('exit', onExit)
  try {
    for await (const line of subprocess.iterable({ from: 'all' })) onLine(line)
  } catch (err) {
    if (cutOff) return
    // Never leave a Blender rendering behind a failed reader.
    subprocess.kill('SIGKILL')
    await subprocess.catch(() => {})
    throw err
  } finally {
    clearTimeout(timer)
    subprocess.off('exit', onExit)
  }
}

export function lineHandler (
  opts: RunOptions, blenderLog: BlenderLog, file: WriteStream
): (line: string) => void {
  const announced = new Set<number>()
  const frameOf = savedFrameFinder(opts)
  const notify = callbackGuard()
  return line => {
    file.write(line + '\n')
    notify(() => opts.onLogLine?.(line))
    const event = blenderLog.add(line)
    if (event?.kind !== 'saved') return

    const frame = frameOf(event.path)
    if (frame === undefined || announced.has(frame)) return
    announced.add(frame)
    notify(() => opts.onFrameSaved?.(frame, resolve(event.path)))
  }
}

/**
 * Runs a caller's callback so that a throw cannot stop the reading of
 * Blender's output; the first throw is logged, the rest would be noise.
 */
function callbackGuard (): (callback: () => void) => void {
  let reported = false
  return callback => {
    try {
      callback()
    } catch (err) {
      if (reported) return
      reported = true
      log.error('chunk callback threw', { error: messageOf(err) })
    }
  }
}

/** The planned frame a `Saved:` path is, when it is one. */
function savedFrameFinder (
  opts: RunOptions
): (path: string) => number | undefined {
  const byName = new Map(
    opts.frames.map(f => [frameFileName(f, opts.format), f]))
  const dir = resolve(opts.chunkDir)
  return path => dirname(resolve(path)) === dir
    ? byName.get(basename(path))
    : undefined
}

export interface ExecaOutcome {
  exitCode?: number
  signal?: string
  timedOut: boolean
  isCanceled: boolean
  originalMessage?: string
}

export function outcomeOf (
  result: ExecaOutcome, opts: Pick<RunOptions, 'sandbox' | 'timeoutMs' | 'hangTimeoutMs'>,
  hung: boolean
): ProcessOutcome {
  const neverRan = result.exitCode === undefined && result.signal === undefined
  const sandboxSignal = opts.sandbox === undefined ? undefined : signalOfExit(result.exitCode)
  return {
    exitCode: sandboxSignal === undefined ? result.exitCode : undefined,
    signal: result.signal ?? sandboxSignal,
    timedOut: result.timedOut,
    cancelled: result.isCanceled,
    hung,
    timeoutMs: opts.timeoutMs,
    hangTimeoutMs: opts.hangTimeoutMs,
    startError: neverRan ? result.originalMessage ?? 'unknown' : undefined
  }
}

/** Waits for the log to reach the disk; a write error surfaces here. */
export async function closeLog (file: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    file.end((err?: Error | null) => { err == null ? resolve() : reject(err) })
  })
}
