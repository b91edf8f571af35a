/**
 * Errors the CLI turns into one sentence and an exit code. Anything else
 * that reaches the top is a bug and is printed with its stack.
 */

/** The user asked for something impossible: a bad flag, path or file. */
export class UsageError extends Error {
  static readonly exitCode = 2
  override name = 'UsageError'
}

/** The job ran but did not deliver every frame. */
export class JobFailedError extends Error {
  static readonly exitCode = 1
  override name = 'JobFailedError'
}

/** A message from the network that does not follow the protocol. */
export class WireError extends Error {
  override name = 'WireError'
}

/** The message of any thrown value, for logs and summaries. */
export function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
