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

/** What a file system error code means, for a user who never saw one. */
const FILE_PROBLEMS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'not permitted (permissions, or a file marked immutable)',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder, not a file',
  EEXIST: 'a file is in the way',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links in the path'
}

/** A failed file operation in words, with its code for searching: `the disk is full (ENOSPC)`. */
export function fileProblem (err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code
  const words = code === undefined ? undefined : FILE_PROBLEMS[code]
  return words === undefined ? messageOf(err) : `${words} (${code})`
}

/** The message of any thrown value, for logs and summaries. */
export function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
