/**
 * The private-swarm connection protector: @libp2p/pnet (every byte of a
 * connection XORed with XSalsa20 keyed by the swarm key, before noise),
 * with two faults of pnet 3.0.27 fixed from outside; upstream fixes both
 * in js-libp2p PR #3585, not yet released.
 *
 * Its cipher (the `xsalsa20` package) runs in one WebAssembly memory
 * shared by the whole process: 640 KiB to start, each cipher taking a
 * 64-byte slot at its bottom and each update copying its input above the
 * slots.
 *
 * - Big writes: an update that does not fit grows the memory, which
 *   leaves every other cipher with a detached view; each of those then
 *   grows it again on its next update, until the 62.5 MiB cap throws
 *   (`WebAssembly.Memory.grow(): Maximum memory size exceeded`). pnet
 *   hands the whole write buffer of a connection to one update, so a busy
 *   transfer reaches that. We feed the cipher 64 KiB at a time.
 * - Slots: pnet never calls finalize(), so every connection (any TCP
 *   peer that sends 24 bytes, key or not) keeps two slots for good; once
 *   they fill the initial memory, after about 5,000 connections, updates
 *   grow it as above and long-lived connections broke. We finalize both
 *   ciphers when the TCP connection closes.
 */
import { preSharedKey } from '@libp2p/pnet'
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface'
import { formatSwarmKey } from './swarm-key.js'

/** Far below the 640 KiB the memory starts with, slots included. */
const CIPHER_CHUNK_BYTES = 64 * 1024

interface Cipher {
  update: (input: Uint8Array, output?: Uint8Array) => Uint8Array
  finalize: () => void
}

/** libp2p's `connectionProtector` for a swarm with this pre-shared key. */
export function privateSwarm (psk: Uint8Array): () => ConnectionProtector {
  const pnet = preSharedKey({ psk: new TextEncoder().encode(formatSwarmKey(psk)) })
  return () => new BoundedProtector(pnet())
}

class BoundedProtector implements ConnectionProtector {
  constructor (private readonly pnet: ConnectionProtector) {}

  async protect (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const boxed = await this.pnet.protect(connection, options)
    const releases = [boundCipher(boxed, 'inboundXor'), boundCipher(boxed, 'outboundXor')]
    const release = (): void => { for (const r of releases) r() }
    // Once the TCP connection is closed no byte reaches either cipher.
    if (connection.status === 'open' || connection.status === 'closing') {
      connection.addEventListener('close', release, { once: true })
    } else {
      release()
    }
    return boxed
  }
}

/**
 * Replaces pnet's cipher in `field` (private to pnet, hence the lookup by
 * name) with one that updates in chunks; returns its release. After the
 * release it outputs zeros: never the plaintext, and never through a slot
 * that another connection may own by then.
 */
function boundCipher (boxed: MessageStream, field: 'inboundXor' | 'outboundXor'): () => void {
  const fields = boxed as unknown as Record<string, Cipher | undefined>
  const cipher = fields[field]
  if (typeof cipher?.update !== 'function' || typeof cipher.finalize !== 'function') {
    throw new Error(`@libp2p/pnet has no ${field} cipher any more; check src/net/pnet.ts against its new version`)
  }
  let released = false
  const release = (): void => {
    if (released) return
    released = true
    cipher.finalize()
  }
  fields[field] = {
    update (input: Uint8Array): Uint8Array {
      const output = new Uint8Array(input.byteLength)
      if (released) return output
      for (let start = 0; start < input.byteLength; start += CIPHER_CHUNK_BYTES) {
        const end = Math.min(start + CIPHER_CHUNK_BYTES, input.byteLength)
        cipher.update(input.subarray(start, end), output.subarray(start, end))
      }
      return output
    },
    finalize: release
  }
  return release
}
