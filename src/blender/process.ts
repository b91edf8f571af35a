/**
 * One Blender process for one chunk: its output streams line by line into
 * the chunk's log file and into the `BlenderLog` that judges it. execa
 * owns the timeout, the cancel and the kill (SIGTERM, then SIGKILL).
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { execa } from 'execa'
import { frameFileName, type ImageFormat } from '../job/naming.js'
import { CHUNK_LOG_NAME } from './chunk-files.js'
import type { BlenderLog } from './chunk-log.js'
import type { ProcessOutcome } from './chunk-verdict.js'
import type { BlenderInstall } from './install.js'
import { KILL_GRACE_MS } from './limits.js'

export interface RunOptions {
  chunkDir: string
  frames: number[]
  format: ImageFormat
  timeoutMs?: number
  signal?: AbortSignal
  onFrameSaved?: (frame: number, path: string) => void
  onLogLine?: (line: string) => void
}

export interface BlenderRun {
  outcome: ProcessOutcome
  logPath: string
}

export async function runBlender (
  blender: BlenderInstall, argv: string[], opts: RunOptions, log: BlenderLog
): Promise<BlenderRun> {
  const logPath = join(opts.chunkDir, CHUNK_LOG_NAME)
  const file = createWriteStream(logPath)
  file.on('error', () => {}) // reported by close(), once Blender is done
  const subprocess = execa(blender.path, argv, {
    // A relative output path in the scene would land here, where the
    // verdict sees it as an extra file (case B29).
    cwd: opts.chunkDir,
    stdin: 'ignore',
    all: true,
    buffer: false,
    reject: false,
    timeout: opts.timeoutMs,
    cancelSignal: opts.signal,
    forceKillAfterDelay: KILL_GRACE_MS
  })

  const onLine = lineHandler(opts, log, file)
  for await (const line of subprocess.iterable({ from: 'all' })) onLine(line)
  const result = await subprocess
  await close(file)
  return { outcome: outcomeOf(result, opts), logPath }
}

function lineHandler (
  opts: RunOptions, log: BlenderLog, file: WriteStream
): (line: string) => void {
  const announced = new Set<number>()
  const frameOf = savedFrameFinder(opts)
  return line => {
    file.write(line + '\n')
    opts.onLogLine?.(line)
    const event = log.add(line)
    if (event?.kind !== 'saved') return

    const frame = frameOf(event.path)
    if (frame === undefined || announced.has(frame)) return
    announced.add(frame)
    opts.onFrameSaved?.(frame, resolve(event.path))
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

interface ExecaOutcome {
  exitCode?: number
  signal?: string
  timedOut: boolean
  isCanceled: boolean
}

function outcomeOf (result: ExecaOutcome, opts: RunOptions): ProcessOutcome {
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    timedOut: result.timedOut,
    cancelled: result.isCanceled,
    timeoutMs: opts.timeoutMs
  }
}

/** Waits for the log to reach the disk; a write error surfaces here. */
async function close (file: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    file.end((err?: Error | null) => { err == null ? resolve() : reject(err) })
  })
}
