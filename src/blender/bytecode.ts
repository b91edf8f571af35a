/**
 * Blender's Python compiled once, not at every start. Blender imports
 * some 450 ms of its own Python when it starts (bl_ui, bl_operators, the
 * add-ons), and Python compiles each module from source unless it finds
 * bytecode: Debian's package ships none, and its scripts folder is not
 * writable, so every Blender start compiles them all again, about 0.3 s
 * of a 0.8 s start on a 2-core machine (docs/performance.md).
 * PYTHONPYCACHEPREFIX gives Python a folder of ours to keep bytecode in;
 * Python checks each file against its source's size and time, so a
 * Blender upgrade recompiles by itself.
 *
 * A worker's runs get a folder of the worker process's own instead
 * (sandbox.ts); sandboxed, only the probe, which opens no job's file, may
 * write it, so a job cannot plant bytecode that a later job's Blender
 * would run. The user's folder is then `submit`'s.
 */
import { lstatSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { logger } from '../common/log.js'
import { onlyThisUserWrites, userCacheDir } from '../common/paths.js'

const log = logger('blender')

let userCache: string | undefined | null = null

/** This process's folder: the user's (below), made at first use, or a
 * worker's own (useBytecodeCache). */
export function bytecodeCacheDir (): string | undefined {
  if (userCache === null) userCache = makeBytecodeCache(process.env)
  return userCache
}

/**
 * A worker's unsandboxed Blender runs keep their bytecode in a folder of
 * the worker's own instead, made at its start like the sandbox's: a file
 * damaged in the user's folder must not fail every chunk it takes.
 */
export function useBytecodeCache (dir: string): void {
  userCache = dir
}

/**
 * `$XDG_CACHE_HOME/blendnet/blender-bytecode` (~/.cache by default),
 * made if missing; undefined where it cannot be made (a read-only home):
 * Blender then compiles at every start, as it always did.
 */
export function makeBytecodeCache (env: NodeJS.ProcessEnv): string | undefined {
  const dir = join(userCacheDir(env), 'blender-bytecode')
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    log.debug('no bytecode cache for Blender', { dir, err: (err as Error).message })
    return undefined
  }
  // Bytecode found there runs in Blender: only a folder of this user's
  // own that nobody else may write into.
  const stat = lstatSync(dir)
  if (!stat.isDirectory() || !onlyThisUserWrites(stat)) {
    log.warn('not using Blender\'s bytecode cache: not a folder only this user may write', { dir })
    return undefined
  }
  return dir
}

/**
 * The environment Blender runs with, outside a sandbox: its Python keeps
 * bytecode in `dir`. PYTHONDONTWRITEBYTECODE is dropped for Blender only:
 * set for the user's own Python, it would leave the folder empty.
 */
export function bytecodeEnv (dir: string | undefined): NodeJS.ProcessEnv {
  if (dir === undefined) return {}
  return { PYTHONPYCACHEPREFIX: dir, PYTHONDONTWRITEBYTECODE: undefined }
}

/**
 * Python trusts a bytecode file whose header matches its source; one
 * damaged past the header (a disk fault, a cut write) stops Blender at
 * start, at every start after it: `ValueError: bad marshal data` or
 * `EOFError: marshal data too short`, raised while reading bytecode.
 */
const DAMAGED = /in _compile_bytecode\b|bad marshal data|marshal data too short/

/**
 * Runs Blender with this process's bytecode cache. Where a damaged file in it
 * stopped Blender, the cache is emptied and Blender runs once more, so
 * that one bad file costs one start, not every start after it.
 */
export async function withBytecodeCache<T extends { all?: unknown }> (
  run: (env: NodeJS.ProcessEnv) => Promise<T>
): Promise<T> {
  const dir = bytecodeCacheDir()
  const result = await run(bytecodeEnv(dir))
  if (dir === undefined || !DAMAGED.test(String(result.all ?? ''))) return result
  log.warn('Blender\'s bytecode cache had a damaged file; emptied it', { dir })
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  return await run(bytecodeEnv(dir))
}
