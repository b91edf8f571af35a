import { existsSync, type Stats } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fileProblem, UsageError } from './errors.js'

let cachedRoot: string | undefined

/**
 * The blendnet checkout or package folder: the nearest folder above this
 * module holding a package.json. Scripts that run inside Blender live under
 * it in `scripts/`, the wire schema in `proto/`.
 */
export function packageRoot (): string {
  if (cachedRoot !== undefined) return cachedRoot
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('blendnet: cannot find its package.json')
    dir = parent
  }
  cachedRoot = dir
  return dir
}

/** A file under the package root, e.g. `packagePath('scripts', 'x.py')`. */
export function packagePath (...parts: string[]): string {
  return join(packageRoot(), ...parts)
}

/**
 * A new folder `parent/prefix…`; where the temp folder ($TMPDIR) is
 * missing or not writable, a UsageError naming it, not a stack trace.
 */
export async function makeTempDir (parent: string, prefix: string): Promise<string> {
  try {
    return await mkdtemp(join(parent, prefix))
  } catch (err) {
    throw new UsageError(`cannot make a folder in the temp folder "${parent}" (TMPDIR): ${fileProblem(err)}`)
  }
}

/**
 * blendnet's folder in the user's cache: `$XDG_CACHE_HOME/blendnet`, or
 * `~/.cache/blendnet` when that is unset or not absolute (as the XDG
 * spec says to treat it).
 */
export function userCacheDir (env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME !== undefined && isAbsolute(env.XDG_CACHE_HOME)
    ? env.XDG_CACHE_HOME
    : join(homedir(), '.cache')
  return join(base, 'blendnet')
}

/**
 * A file or folder of this user's that nobody else may write: what
 * blendnet trusts a cache in that runs code or decides what this
 * machine can render.
 */
export function onlyThisUserWrites (stat: Stats): boolean {
  return stat.uid === process.getuid?.() && (stat.mode & 0o022) === 0
}
