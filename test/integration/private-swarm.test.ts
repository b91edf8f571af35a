/**
 * Private swarms between real nodes on 127.0.0.1: peers holding the swarm
 * key connect, gossip and move a 200 MiB scene; a peer without the key,
 * or with another one, cannot connect either way and never sees the jobs
 * topic; and connections that come and go give back their cipher memory
 * (src/net/pnet.ts).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { JOBS_TOPIC } from '../../src/common/constants.js'
import { BlobServer, fetchBlob, hashFile } from '../../src/net/fetch.js'
import { newPeerKey } from '../../src/net/identity.js'
import { createSwarmNode, type SwarmNode } from '../../src/net/node.js'
import { addrOf, tempDir, waitFor } from '../helpers/swarm.js'
import { writeRandomFile } from '../helpers/files.js'

const MiB = 1024 * 1024
const SIZE = 200 * MiB

/** The cipher pnet uses; its internals are read only to measure it. */
interface XSalsa20 {
  (nonce: Uint8Array, key: Uint8Array): { _xor: { _pointer?: number }, finalize: () => void }
  prototype: { update: (input: Uint8Array, output?: Uint8Array) => Uint8Array }
}
const xsalsa20 = createRequire(import.meta.url)('xsalsa20') as XSalsa20

/** Where the next cipher's slot lands in the shared memory: it grows with every slot kept. */
function nextCipherSlot (): number {
  const cipher = xsalsa20(new Uint8Array(24), new Uint8Array(32))
  const slot = cipher._xor._pointer
  cipher.finalize()
  assert.equal(typeof slot, 'number', 'xsalsa20 runs its WebAssembly cipher')
  return slot as number
}

async function peer (swarmKey: Uint8Array | undefined, bootstrap: string[] = []): Promise<SwarmNode> {
  return await createSwarmNode({
    privateKey: await newPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, swarmKey
  })
}

/** Everything a node hears on the jobs topic, as text. */
function listen (node: SwarmNode): string[] {
  const heard: string[] = []
  node.services.pubsub.subscribe(JOBS_TOPIC)
  node.services.pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic === JOBS_TOPIC) heard.push(new TextDecoder().decode(evt.detail.data))
  })
  return heard
}

describe('private swarm', { timeout: 240_000 }, () => {
  const psk = Uint8Array.from(randomBytes(32))
  const nodes: SwarmNode[] = []
  let dir: string

  before(async () => { dir = await tempDir('blendnet-pnet-') })
  after(async () => {
    await Promise.all(nodes.map(async n => { await n.stop() }))
    await rm(dir, { recursive: true, force: true })
  })

  async function started (swarmKey: Uint8Array | undefined, bootstrap: string[] = []): Promise<SwarmNode> {
    const node = await peer(swarmKey, bootstrap)
    nodes.push(node)
    return node
  }

  it('peers with the key connect and gossip; without it or with another key they cannot, either way', async () => {
    const a = await started(psk)
    const b = await started(psk, [addrOf(a)])
    const open = await started(undefined, [addrOf(a)])
    const other = await started(Uint8Array.from(randomBytes(32)), [addrOf(a)])
    const heard = new Map([a, b, open, other].map(n => [n, listen(n)]))

    await waitFor(() => b.getConnections(a.peerId).length > 0, 'the peer with the key to connect')
    for (const [from, to] of [[open, a], [other, a], [a, open], [a, other]]) {
      await assert.rejects(from.dial(multiaddr(addrOf(to)), { signal: AbortSignal.timeout(15_000) }))
    }

    // Gossip reaches the keyed peer once its mesh forms; the others keep
    // publishing too, and keep redialling a through --bootstrap.
    const deadline = Date.now() + 20_000
    for (let i = 0; heard.get(b)?.includes('from a') !== true; i++) {
      assert.ok(Date.now() < deadline, 'b never heard a on the jobs topic')
      await a.services.pubsub.publish(JOBS_TOPIC, new TextEncoder().encode('from a'))
      await open.services.pubsub.publish(JOBS_TOPIC, new TextEncoder().encode('from open'))
      await other.services.pubsub.publish(JOBS_TOPIC, new TextEncoder().encode('from other'))
      await new Promise(resolve => setTimeout(resolve, 250))
    }
    await new Promise(resolve => setTimeout(resolve, 6_000)) // past a bootstrap redial
    assert.deepEqual(heard.get(open), [])
    assert.deepEqual(heard.get(other), [])
    assert.ok(!(heard.get(a) ?? []).some(m => m !== 'from a' && m !== 'from b'), 'a heard an outsider')
    assert.deepEqual(a.getConnections().map(c => c.remotePeer.toString()), [b.peerId.toString()])
    for (const outsider of [open, other]) assert.deepEqual(outsider.getConnections(), [])
  })

  it('moves a 200 MiB scene between peers with the key, in bounded memory, 64 KiB per cipher update', async () => {
    const source = join(dir, 'big.blend')
    await writeRandomFile(source, SIZE)
    const sha256 = await hashFile(source)
    const server = await started(psk)
    const blobs = new BlobServer(server)
    blobs.add(sha256, source)
    await blobs.start()
    const client = await started(psk)
    await client.dial(multiaddr(addrOf(server)))

    const update = xsalsa20.prototype.update
    let largestUpdate = 0
    xsalsa20.prototype.update = function (input, output) {
      largestUpdate = Math.max(largestUpdate, input.byteLength)
      return update.call(this, input, output)
    }
    global.gc?.()
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
    const startedAt = performance.now()
    const dest = join(dir, 'copy.blend')
    try {
      await fetchBlob(client, server.peerId, { sha256, size: SIZE, name: 'big.blend' }, dest)
    } finally {
      clearInterval(sampler)
      xsalsa20.prototype.update = update
    }
    const seconds = (performance.now() - startedAt) / 1000
    assert.deepEqual(await hashFile(dest), sha256)
    const grewMiB = (peak - baseline) / MiB
    console.log(`# 200 MiB over pnet in ${seconds.toFixed(1)} s (${(SIZE / MiB / seconds).toFixed(0)} MiB/s, both ends in this process); ` +
      `RSS ${(baseline / MiB).toFixed(0)} MiB, grew by ${grewMiB.toFixed(1)} MiB; largest cipher update ${largestUpdate} bytes`)
    assert.ok(grewMiB < 96, `memory grew by ${grewMiB.toFixed(0)} MiB for a ${SIZE / MiB} MiB file`)
    assert.ok(largestUpdate > 0 && largestUpdate <= 64 * 1024, `a cipher update of ${largestUpdate} bytes`)
  })

  it('connections that come and go, with the key or without, keep no cipher memory', async () => {
    const server = await started(psk)
    const client = await started(psk)
    const outsiders = [await started(undefined), await started(Uint8Array.from(randomBytes(32)))]
    const addr = multiaddr(addrOf(server))
    const before = nextCipherSlot()
    global.gc?.()
    const rssBefore = process.memoryUsage().rss
    const rounds = 300
    // Refused dials run alongside: some fail at once, some only when noise times out.
    const refused = Array.from({ length: 10 }, async () => await Promise.allSettled(
      outsiders.map(async o => await o.dial(addr, { signal: AbortSignal.timeout(8_000) }))))
    for (let i = 0; i < rounds; i++) {
      const connection = await client.dial(addr)
      await connection.close()
    }
    await Promise.all(refused)
    await waitFor(() => server.getConnections().length === 0, 'every connection to close')
    global.gc?.()
    const slot = nextCipherSlot()
    console.log(`# ${rounds} connections (and 20 refused): next cipher slot at ${slot} (was ${before}); ` +
      `RSS ${(rssBefore / MiB).toFixed(0)} -> ${(process.memoryUsage().rss / MiB).toFixed(0)} MiB`)
    // Four ciphers per connection (both ends are here) at 64 bytes each: a
    // leak would put the next slot at least 76,800 bytes further up.
    assert.ok(slot < before + 64 * 64, `the next cipher slot moved from ${before} to ${slot}`)
  })
})
