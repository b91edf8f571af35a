import { hangupReopensLog } from '../common/log.js'
let humanOutput: NodeJS.WritableStream = process.stdout

/**
 * What the user reads: plain lines on stdout, apart from the log; on
 * stderr once stdout carries machine output (`submit --json`).
 */
export function say (line: string): void {
  humanOutput.write(line.endsWith('\n') ? line : line + '\n')
}

/** Keeps stdout for machine output: `say` writes to stderr from now on. */
export function sayOnStderr (): void {
  humanOutput = process.stderr
}

/**
 * The signals that stop a command politely: Ctrl-C, `kill`, and a closed
 * terminal or ssh session (SIGHUP), unless SIGHUP reopens the log file.
 */
export function stopSignals (): NodeJS.Signals[] {
  return hangupReopensLog() ? ['SIGINT', 'SIGTERM'] : ['SIGINT', 'SIGTERM', 'SIGHUP']
}

/**
 * Resolves with the name of the first stopSignals() signal. The listeners
 * stay registered (`on`, not `once`): execa's signal-exit re-raises a
 * signal that no other listener handles, which would kill the process
 * before it could stop Blender and clean up.
 */
export function untilSignal (): Promise<string> {
  return new Promise((resolve) => {
    let received: string | undefined
    for (const name of stopSignals()) {
      process.on(name, () => {
        if (received !== undefined) return
        received = name
        resolve(name)
      })
    }
  })
}

/** `1 frame`, `24 frames`. */
export function count (n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

/** Printable on a terminal: no control characters, bounded length. */
export function printable (text: string, max = 400): string {
  const clean = text.replace(/[\x00-\x1f\x7f-\x9f]/g, ' ')
  return clean.length > max ? `${clean.slice(0, max)}…` : clean
}
