/**
 * Peer keys. A peer's key is its peer ID; it lives in a file of mode 0600
 * so that the ID, and the addresses others wrote down, survive restarts.
 *
 * Which key a command runs under:
 *   --key FILE                   that file (worker, submit, id)
 *   worker with --work-dir DIR   DIR/peer.key, so that several workers on
 *                                one machine have their own peer IDs
 *   otherwise                    identity.key in the config dir
 * A missing key is created. A key other users can read is refused.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { readFileSync, unlinkSync } from 'node:fs'
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { fileProblem, UsageError } from '../common/errors.js'
import { isAlive } from '../common/pid.js'

/** $BLENDNET_CONFIG_DIR, else $XDG_CONFIG_HOME/blendnet, else ~/.config/blendnet. */
export function configDir (env: NodeJS.ProcessEnv = process.env): string {
  const own = env.BLENDNET_CONFIG_DIR
  if (own !== undefined && own !== '') return resolve(own)
  // The XDG spec says to ignore an empty or relative XDG_CONFIG_HOME.
  const xdg = env.XDG_CONFIG_HOME
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.config'), 'blendnet')
}

export function defaultKeyPath (env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'identity.key')
}

export async function newPeerKey (): Promise<PrivateKey> {
  return generateKeyPair('Ed25519')
}

/**
 * Reads a secret file, refusing one that other users could read or
 * change, as ssh does. A missing file throws ENOENT for the caller to
 * decide; every other problem is a UsageError naming `what`.
 */
export async function readPrivateFile (path: string, what: string): Promise<Buffer> {
  try {
    const info = await stat(path)
    if (!info.isFile()) throw new UsageError(`${what} ${path} is not a file`)
    if ((info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
      throw new UsageError(`${what} ${path} is open to other users (mode ${mode}); make it private with chmod 600 ${path}`)
    }
    return await readFile(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (err instanceof UsageError || code === 'ENOENT') throw err
    throw new UsageError(`cannot read ${what} ${path}: ${fileProblem(err)}`)
  }
}

/**
 * The key in `path`, created (mode 0600) when there is none. Its folder is
 * made only when it is blendnet's own (`makeFolder`; by default the config
 * dir): a mistyped --key path must not quietly make folders and a new
 * identity somewhere else.
 */
export async function loadOrCreatePeerKey (path: string,
  makeFolder = dirname(path) === configDir()): Promise<{ key: PrivateKey, created: boolean }> {
  try {
    const bytes = await readPrivateFile(path, 'the peer key')
    try {
      return { key: privateKeyFromProtobuf(bytes), created: false }
    } catch {
      throw new UsageError(`the peer key ${path} is not a libp2p private key; move it away and a new key (a new peer ID) is made`)
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const key = await newPeerKey()
  try {
    if (makeFolder) await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    // Another process created it first: use that one.
    if (code === 'EEXIST') return await loadOrCreatePeerKey(path, makeFolder)
    if (code === 'ENOENT') throw new UsageError(`cannot create the peer key ${path}: the folder ${dirname(path)} does not exist`)
    throw new UsageError(`cannot create the peer key ${path}: ${fileProblem(err)}`)
  }
  return { key, created: true }
}

export interface Identity {
  key: PrivateKey
  /** The key file; undefined for a one-off key. */
  path?: string
  created: boolean
  /** Why the command runs under a one-off key, to tell the user. */
  note?: string
}

/**
 * The key a worker or submit runs under (see the top of this file). The
 * config dir's key is shared by every command run without --key, but a
 * peer ID can be online only once (two processes under one ID take each
 * other's connections), so it is locked while in use: a second worker
 * is refused, a second submit runs under a one-off key and says so.
 */
export async function openIdentity (command: 'worker' | 'submit',
  explicitKey?: string, makeFolder?: boolean): Promise<Identity> {
  if (explicitKey !== undefined) {
    const path = resolve(explicitKey)
    return { ...await loadOrCreatePeerKey(path, makeFolder), path }
  }
  const path = defaultKeyPath()
  const loaded = await loadOrCreatePeerKey(path)
  const holder = await lockKey(path)
  if (holder === undefined) return { ...loaded, path }
  if (command === 'worker') {
    throw new UsageError(`the key ${path} is in use by blendnet process ${holder}, and a peer ID can be online only once; give this worker its own key with --key FILE or --work-dir DIR`)
  }
  return {
    key: await newPeerKey(),
    created: false,
    note: `${path} is in use by blendnet process ${holder}; this submit runs under a one-off peer ID`
  }
}

/**
 * Takes `<key>.lock` (holding our PID) for this process, released when it
 * exits. Returns the PID of a live process that holds it instead.
 */
async function lockKey (keyPath: string): Promise<number | undefined> {
  const lock = `${keyPath}.lock`
  const mine = `${lock}.${process.pid}`
  await writeFile(mine, String(process.pid))
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        // link() fails if the lock exists, and never shows it half written.
        await link(mine, lock)
        process.once('exit', () => { releaseLock(lock) })
        return undefined
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new UsageError(`cannot lock the key ${keyPath}: ${(err as Error).message}`)
        }
      }
      const holder = Number(await readFile(lock, 'utf8').catch(() => ''))
      if (holder !== process.pid && isAlive(holder)) return holder
      await rm(lock, { force: true }) // left by a process that was killed
    }
    throw new UsageError(`cannot lock the key ${keyPath}: ${lock} keeps coming back`)
  } finally {
    await rm(mine, { force: true })
  }
}

function releaseLock (lock: string): void {
  try {
    if (readFileSync(lock, 'utf8') === String(process.pid)) unlinkSync(lock)
  } catch {
    // Already gone: nothing to release.
  }
}
