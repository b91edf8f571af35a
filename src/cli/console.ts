/** What the user reads: plain lines on stdout, apart from the log. */
export function say (line: string): void {
  process.stdout.write(line.endsWith('\n') ? line : line + '\n')
}

/** Resolves with the name of the first SIGINT or SIGTERM. */
export function untilSignal (): Promise<string> {
  return new Promise((resolve) => {
    const on = (name: string): void => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      resolve(name)
    }
    const onInt = (): void => { on('SIGINT') }
    const onTerm = (): void => { on('SIGTERM') }
    process.once('SIGINT', onInt)
    process.once('SIGTERM', onTerm)
  })
}
