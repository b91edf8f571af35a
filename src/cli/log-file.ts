/**
 * `--log-file PATH`, shared by worker, submit and relay: the operator log
 * (src/common/log.ts) is appended to PATH instead of stderr, so a daemon
 * keeps its history across restarts. What the user is told still goes to
 * stdout.
 */
import { resolve } from 'node:path'
import { fileProblem, UsageError } from '../common/errors.js'
import { logToFile } from '../common/log.js'

export const LOG_FILE_HELP = `  --log-file <path>        append the log to this file instead of stderr
                           (created if missing; SIGHUP reopens it)
`

export function useLogFile (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  if (value === '') throw new UsageError('--log-file needs a file path')
  const path = resolve(value)
  try {
    logToFile(path)
  } catch (err) {
    throw new UsageError(`--log-file "${value}" cannot be opened for appending: ${fileProblem(err)}`)
  }
  return path
}
