/**
 * Swarm keys: the pre-shared key of a private swarm, in the format every
 * libp2p (and IPFS) implementation reads:
 *
 *   /key/swarm/psk/1.0.0/
 *   /base16/
 *   <64 hex digits: 32 random bytes>
 *
 * Which key a command uses, first found wins:
 *   --swarm-key FILE, then $BLENDNET_SWARM_KEY (a file path), then
 *   swarm.key in the config dir if it exists; with none the swarm is open.
 * A key named by the flag or the variable must exist; every key must be
 * well formed and readable by its owner only.
 */
import { createHash, randomBytes } from 'node:crypto'
import { lstat, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { UsageError } from '../common/errors.js'
import { configDir, readPrivateFile } from './identity.js'

const HEADER = '/key/swarm/psk/1.0.0/'
const CODEC = '/base16/'
const KEY_BYTES = 32

export interface SwarmKey {
  /** The 32-byte pre-shared key. */
  psk: Uint8Array
  path: string
  fingerprint: string
}

/** The key in a swarm key file's text; throws saying what is wrong. */
export function parseSwarmKey (text: string): Uint8Array {
  const lines = text.split(/\r?\n/)
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop()
  const [header, codec, hex] = lines.map(l => l.trim())
  if (header !== HEADER) throw new Error(`its first line is not ${HEADER}`)
  if (codec !== CODEC) throw new Error(`its second line is not ${CODEC} (other encodings are not supported)`)
  if (hex === undefined || !/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new Error(`its third line is not ${KEY_BYTES * 2} hex digits`)
  }
  if (lines.length > 3) throw new Error('it has more than three lines')
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}

export function formatSwarmKey (psk: Uint8Array): string {
  return `${HEADER}\n${CODEC}\n${Buffer.from(psk).toString('hex')}\n`
}

/**
 * Names a key without revealing it: the start of its SHA-256, so peers
 * can compare keys in logs and on the phone.
 */
export function swarmKeyFingerprint (psk: Uint8Array): string {
  return createHash('sha256').update(psk).digest('hex').slice(0, 16).replace(/(.{4})(?!$)/g, '$1:')
}

/** The one line worker and submit print at start. */
export function describeSwarm (key: SwarmKey | undefined): string {
  return key === undefined
    ? 'swarm: open (no swarm key: any peer that can reach this one may join)'
    : `swarm: private (key ${key.path}, fingerprint ${key.fingerprint})`
}

/** `what` names the key in errors: the flag, the variable or "the swarm key". */
export async function readSwarmKey (path: string, what: string): Promise<SwarmKey> {
  let text: string
  try {
    text = (await readPrivateFile(path, what)).toString('utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    throw new UsageError(`${what} ${path} does not exist; make one with blendnet keygen ${path}`)
  }
  try {
    const psk = parseSwarmKey(text)
    return { psk, path, fingerprint: swarmKeyFingerprint(psk) }
  } catch (err) {
    throw new UsageError(`${what} ${path} is not a libp2p swarm key: ${(err as Error).message}; make one with blendnet keygen`)
  }
}

/** The swarm key this command runs with, or undefined for an open swarm. */
export async function resolveSwarmKey (flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env): Promise<SwarmKey | undefined> {
  if (flag !== undefined) return await readSwarmKey(resolve(flag), '--swarm-key')
  const fromEnv = env.BLENDNET_SWARM_KEY
  if (fromEnv !== undefined && fromEnv !== '') return await readSwarmKey(resolve(fromEnv), 'BLENDNET_SWARM_KEY')
  const inConfig = defaultSwarmKeyPath(env)
  try {
    await lstat(inConfig) // a dangling link is an error below, not an open swarm
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
  }
  return await readSwarmKey(inConfig, 'the swarm key')
}

export function defaultSwarmKeyPath (env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'swarm.key')
}

/**
 * Writes a new random swarm key to `path` (mode 0600), never over an
 * existing file. The config dir is created if needed; another folder
 * must exist.
 */
export async function writeNewSwarmKey (path: string): Promise<SwarmKey> {
  const psk = Uint8Array.from(randomBytes(KEY_BYTES))
  try {
    if (dirname(path) === configDir()) await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    await writeFile(path, formatSwarmKey(psk), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      throw new UsageError(`${path} already exists; keygen never replaces a key (peers holding it would be locked out), so move it away first or pick another file`)
    }
    throw new UsageError(`cannot write the swarm key ${path}: ${code === 'ENOENT' ? 'its folder does not exist' : code ?? (err as Error).message}`)
  }
  return { psk, path, fingerprint: swarmKeyFingerprint(psk) }
}
