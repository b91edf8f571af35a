/**
 * Peer keys. A worker keeps its key in its work dir (mode 0600) so that its
 * peer ID, and the bootstrap address others wrote down, survive restarts;
 * a coordinator uses a fresh key per submit.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'

export async function newPeerKey (): Promise<PrivateKey> {
  return generateKeyPair('Ed25519')
}

export async function loadOrCreatePeerKey (path: string): Promise<PrivateKey> {
  try {
    return privateKeyFromProtobuf(await readFile(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read the peer key ${path}: ${(err as Error).message}`)
    }
  }
  const key = await newPeerKey()
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return key
}
