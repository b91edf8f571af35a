/**
 * Moving a scene file between two real nodes: verified by hash, and in
 * bounded memory whatever the file's size (backpressure both ways).
 */
import assert from 'node:assert/strict'
import { access, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { BlobServer, fetchBlob, hashFile } from '../../src/net/fetch.js'
import type { SwarmNode } from '../../src/net/node.js'
import { addrOf, startNode, tempDir } from '../helpers/swarm.js'
import { writeRandomFile } from '../helpers/files.js'

const MiB = 1024 * 1024
const SIZE = 256 * MiB

describe('scene transfer', { timeout: 180_000 }, () => {
  let dir: string
  let server: SwarmNode
  let client: SwarmNode
  let sha256: Uint8Array
  const source = (): string => join(dir, 'big.blend')

  before(async () => {
    dir = await tempDir()
    await writeRandomFile(source(), SIZE)
    sha256 = await hashFile(source())
    server = await startNode()
    const blobs = new BlobServer(server)
    blobs.add(sha256, source())
    await blobs.start()
    client = await startNode()
    await client.dial(multiaddr(addrOf(server)))
  })

  after(async () => {
    await Promise.all([server.stop(), client.stop()])
    await rm(dir, { recursive: true, force: true })
  })

  it('moves 256 MiB verified, with memory growing far less than the file', async () => {
    global.gc?.()
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
    const dest = join(dir, 'copy.blend')
    try {
      await fetchBlob(client, server.peerId, { sha256, size: SIZE, name: 'big.blend' }, dest)
    } finally {
      clearInterval(sampler)
    }
    assert.deepEqual(await hashFile(dest), sha256)
    const grewMiB = (peak - baseline) / MiB
    console.log(`# memory grew by ${grewMiB.toFixed(1)} MiB`)
    assert.ok(grewMiB < 96, `memory grew by ${grewMiB.toFixed(0)} MiB for a ${SIZE / MiB} MiB file`)
  })

  it('keeps nothing when the peer does not hold the file', async () => {
    const dest = join(dir, 'missing.blend')
    await assert.rejects(fetchBlob(client, server.peerId,
      { sha256: new Uint8Array(32), size: 10, name: 'x' }, dest), /no such file/)
    await assert.rejects(access(dest))
    await assert.rejects(access(`${dest}.part`))
  })

  it('refuses a file whose size is not the one the job announced', async () => {
    const dest = join(dir, 'wrong-size.blend')
    await assert.rejects(fetchBlob(client, server.peerId,
      { sha256, size: SIZE - 1, name: 'x' }, dest), /offers/)
    await assert.rejects(access(dest))
  })
})
