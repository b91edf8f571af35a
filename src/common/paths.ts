import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { dirname, join } from 'node:path'
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
