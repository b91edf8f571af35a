/**
 * What `blender --version` printed, remembered for an unchanged Blender.
 * That run is a whole Blender start, about 0.3 s of CPU, and `submit`
 * makes it while its own Blender reads the scene and, on a machine that
 * also renders, while a worker's Blender starts: all on the same cores
 * (docs/performance.md, "Standby Blender").
 *
 * An entry holds for the executable's path and identity: device, inode,
 * size, modification and change times, so an upgrade or a replaced binary
 * misses. Only a compiled program is remembered: a script may run another
 * Blender without changing itself. The file lives in the user's cache
 * folder and is read only while nobody else may write it.
 */
import { constants } from 'node:fs'
import { access, lstat, mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { delimiter, dirname, isAbsolute, join } from 'node:path'
import { logger } from '../common/log.js'
import { onlyThisUserWrites, userCacheDir } from '../common/paths.js'

const log = logger('blender')

/** Blenders remembered at most: one per path, a few paths per user. */
const MAX_ENTRIES = 16

interface Entry { identity: string, output: string }

/**
 * `run()`'s output, from the cache file when this executable is the one
 * it was for; `keep` says whether an output is worth remembering.
 */
export async function rememberedVersion (path: string, run: () => Promise<string>,
  keep: (output: string) => boolean, file = versionCacheFile(process.env)): Promise<string> {
  const identity = await executableIdentity(path)
  const entries = identity === undefined ? {} : await readEntries(file)
  const known = identity === undefined ? undefined : entries[identity.path]
  if (identity !== undefined && known?.identity === identity.key && typeof known.output === 'string') return known.output
  const output = await run()
  if (identity !== undefined && keep(output)) {
    const kept = Object.entries(entries).filter(([p]) => p !== identity.path).slice(-(MAX_ENTRIES - 1))
    await writeEntries(file, Object.fromEntries([...kept, [identity.path, { identity: identity.key, output }]]))
      .catch((err: Error) => { log.debug('could not remember Blender\'s version', { file, err: err.message }) })
  }
  return output
}

/** `$XDG_CACHE_HOME/blendnet/blender-versions.json` (~/.cache by default). */
export function versionCacheFile (env: NodeJS.ProcessEnv): string {
  return join(userCacheDir(env), 'blender-versions.json')
}

/** The program `path` runs (PATH searched for a bare name), if compiled. */
async function executableIdentity (path: string): Promise<{ path: string, key: string } | undefined> {
  const found = await findExecutable(path)
  if (found === undefined) return undefined
  try {
    const [info, head] = [await stat(found), await firstBytes(found, 4)]
    if (!info.isFile() || !head.equals(ELF_MAGIC)) return undefined
    return { path: found, key: [info.dev, info.ino, info.size, info.mtimeMs, info.ctimeMs].join(':') }
  } catch {
    return undefined
  }
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46])

async function findExecutable (path: string): Promise<string | undefined> {
  const candidates = path.includes('/')
    ? [path]
    : (process.env.PATH ?? '').split(delimiter).filter(d => isAbsolute(d)).map(d => join(d, path))
  for (const candidate of candidates) {
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate
  }
  return undefined
}

async function firstBytes (path: string, n: number): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(n)
    const { bytesRead } = await handle.read(buffer, 0, n, 0)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

async function readEntries (file: string): Promise<Record<string, Entry>> {
  try {
    // A version read from a file others could write would decide which
    // jobs this machine believes it can read.
    for (const [path, kind] of [[dirname(file), 'folder'], [file, 'file']] as const) {
      const info = await lstat(path)
      const right = kind === 'folder' ? info.isDirectory() : info.isFile()
      if (!right || !onlyThisUserWrites(info)) {
        log.warn('not using the remembered Blender versions: not a file only this user may write', { file })
        return {}
      }
    }
    const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown
    return typeof parsed === 'object' && parsed !== null ? parsed as Record<string, Entry> : {}
  } catch {
    return {}
  }
}

async function writeEntries (file: string, entries: Record<string, Entry>): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  const temp = `${file}.${process.pid}.tmp`
  await writeFile(temp, JSON.stringify(entries), { mode: 0o600 })
  await rename(temp, file)
}
