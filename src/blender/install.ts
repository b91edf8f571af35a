/**
 * Finding the Blender a worker renders with, and which version it is.
 * Workers announce this version; a job whose file needs a newer Blender
 * is not theirs to claim (case B22).
 */
import { resolve } from 'node:path'
import { execa } from 'execa'
import { messageOf } from '../common/errors.js'
import { BlenderNotFoundError } from './errors.js'
import { VERSION_TIMEOUT_MS } from './limits.js'
import { rememberedVersion } from './version-cache.js'

export { BlenderNotFoundError }
export { compareVersions } from '../common/versions.js'

export interface BlenderInstall {
  /** What was run: an absolute path or a name looked up on PATH. */
  path: string
  /** As Blender prints it: '3.4.1'. */
  version: string
  major: number
  minor: number
  patch: number
}

/** `Blender 3.4.1` (the first line of `blender --version`). */
const VERSION_LINE = /^Blender (\d+)\.(\d+)(?:\.(\d+))?\b/m

/** Reads the version out of `blender --version` output. */
export function parseBlenderVersion (
  output: string
): Omit<BlenderInstall, 'path'> | undefined {
  const match = VERSION_LINE.exec(output)
  if (match === null) return undefined

  const [major, minor, patch] = [match[1], match[2], match[3] ?? '0']
    .map(Number)
  return { version: `${major}.${minor}.${patch}`, major, minor, patch }
}

/**
 * The Blender to use: `explicit`, else $BLENDNET_BLENDER, else `blender`
 * on PATH. Runs it once with `--version` to prove it is Blender, unless
 * that same program said so before (version-cache.ts).
 */
export async function findBlender (explicit?: string): Promise<BlenderInstall> {
  const path = blenderPath(explicit)
  const output = await rememberedVersion(path, async () => await runVersion(path),
    said => parseBlenderVersion(said) !== undefined)

  const parsed = parseBlenderVersion(output)
  if (parsed === undefined) {
    throw new BlenderNotFoundError(path,
      `did not print a Blender version (it printed "${firstLine(output)}")`)
  }
  return { path, ...parsed }
}

/** The Blender findBlender would run, without running it. */
export function blenderPath (explicit: string | undefined): string {
  const fromEnv = process.env.BLENDNET_BLENDER
  const chosen = explicit !== undefined && explicit !== ''
    ? explicit
    : fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'blender'
  // Blender runs from each chunk's folder: a relative path must not
  // depend on where blendnet was started.
  return chosen.includes('/') ? resolve(chosen) : chosen
}

async function runVersion (path: string): Promise<string> {
  try {
    const result = await execa(path, ['--version'], {
      timeout: VERSION_TIMEOUT_MS, stdin: 'ignore', all: true
    })
    return result.all
  } catch (err) {
    throw new BlenderNotFoundError(path, describeRunFailure(err), err)
  }
}

function describeRunFailure (err: unknown): string {
  const e = err as {
    code?: string, timedOut?: boolean, exitCode?: number, all?: string
  }
  if (e.code === 'ENOENT') return 'does not exist'
  if (e.code === 'EACCES') return 'is not executable'
  if (e.timedOut === true) return 'did not answer --version in time'
  if (e.exitCode !== undefined) {
    // The loader's or Blender's own words say most: a missing library...
    const said = firstLine(e.all ?? '')
    return `cannot start${said === '' ? '' : `: ${said}`} ` +
      `(exit code ${e.exitCode})`
  }
  return `could not be run (${messageOf(err)})`
}

function firstLine (text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 240) ?? ''
}
