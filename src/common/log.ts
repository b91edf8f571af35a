/**
 * The operator log: one line per event on stderr, findable with grep by
 * component and by the job, chunk and peer fields every line carries:
 *
 *   2026-12-04T16:30:00.123Z info  coordinator granted claim job=3f2a… chunk=4 peer=12D3…
 *
 * What the user is told (progress, summaries) goes to stdout instead.
 * The level comes from BLENDNET_LOG (error, warn, info, debug; default
 * info). `--log-file` sends the lines to a file instead (logToFile).
 */
import { closeSync, openSync, writeSync } from 'node:fs'

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'
export type LogFields = Record<string, string | number | boolean | undefined>

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 }

const threshold: LogLevel = parseLevel(process.env.BLENDNET_LOG) ?? 'info'

function parseLevel (text: string | undefined): LogLevel | undefined {
  return text !== undefined && text in RANK ? text as LogLevel : undefined
}

export interface Logger {
  error: (message: string, fields?: LogFields) => void
  warn: (message: string, fields?: LogFields) => void
  info: (message: string, fields?: LogFields) => void
  debug: (message: string, fields?: LogFields) => void
}

function formatFields (fields: LogFields = {}): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const text = String(v)
      return /[\s"=]/.test(text) ? `${k}=${JSON.stringify(text)}` : `${k}=${text}`
    })
    .join(' ')
}

function write (level: LogLevel, component: string, message: string,
  fields?: LogFields): void {
  if (RANK[level] > RANK[threshold]) return
  const line = [new Date().toISOString(), level.padEnd(5), component,
    message, formatFields(fields)].filter(s => s !== '').join(' ')
  if (logFile === undefined) {
    if (stderrSink !== undefined) stderrSink(level, line)
    else process.stderr.write(line + '\n')
  } else {
    // Synchronous: the last lines before an exit or a crash are the ones
    // an operator needs.
    try {
      writeSync(logFile.fd, line + '\n')
      logFileFailing = false
    } catch (err) {
      // A full or broken log disk must not stop a worker that runs for
      // days: the line goes to stderr, with the reason once.
      if (!logFileFailing) {
        process.stderr.write(`blendnet: cannot write log file ${logFile.path} (${(err as Error).message}); logging to stderr until it can\n`)
      }
      logFileFailing = true
      process.stderr.write(line + '\n')
    }
  }
}

let logFileFailing = false

let logFile: { path: string, fd: number } | undefined

/**
 * From now on, log lines are appended to `path` (created with mode 0640)
 * instead of stderr. SIGHUP reopens it, for log rotation. Throws the
 * open's error (a missing folder, no permission).
 */
export function logToFile (path: string): void {
  const fd = openSync(path, 'a', 0o640)
  if (logFile !== undefined) closeSync(logFile.fd)
  logFile = { path, fd }
  if (!reopensOnHangup) process.on('SIGHUP', reopenLogFile)
  reopensOnHangup = true
}

let reopensOnHangup = false

/** SIGHUP reopens the log file (log rotation) rather than stopping. */
export function hangupReopensLog (): boolean {
  return reopensOnHangup
}

function reopenLogFile (): void {
  if (logFile === undefined) return
  try {
    logToFile(logFile.path)
  } catch (err) {
    process.stderr.write(`blendnet: cannot reopen log file ${logFile.path}: ${(err as Error).message}\n`)
  }
}

/** Takes the lines meant for stderr, e.g. to print them above a live view. */
export type LogSink = (level: LogLevel, line: string) => void
let stderrSink: LogSink | undefined

/** Routes the lines meant for stderr to `to`; undefined: back to stderr. */
export function setLogSink (to: LogSink | undefined): void {
  stderrSink = to
}

export function logger (component: string): Logger {
  return {
    error: (m, f) => { write('error', component, m, f) },
    warn: (m, f) => { write('warn', component, m, f) },
    info: (m, f) => { write('info', component, m, f) },
    debug: (m, f) => { write('debug', component, m, f) }
  }
}
