import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SwarmNode } from '../../src/net/node.js'
import { PeerRateLimit } from '../../src/net/rate-limit.js'

const OPTS = { perSecond: 10, burst: 5, cutOffAfter: 3, blockMs: 60_000 }

function fakeNode (): SwarmNode & { hungUp: string[] } {
  const hungUp: string[] = []
  const peer = { toString: () => 'flooder' }
  return {
    hungUp,
    getConnections: () => [{ remotePeer: peer }],
    hangUp: async (id: { toString: () => string }) => { hungUp.push(id.toString()) }
  } as unknown as SwarmNode & { hungUp: string[] }
}

describe('PeerRateLimit', () => {
  it('lets a burst through, then the sustained rate', () => {
    const limit = new PeerRateLimit(fakeNode(), OPTS)
    const admitted = Array.from({ length: 7 }, () => limit.admit('worker', 0))
    assert.deepEqual(admitted, [true, true, true, true, true, false, false])
    assert.equal(limit.admit('worker', 100), true, 'one token back after 100 ms at 10/s')
    assert.equal(limit.admit('worker', 100), false)
    assert.equal(limit.admit('other', 100), true, 'peers have their own buckets')
  })

  it('cuts a flooder off: its connection closed, its streams refused until the block ends', () => {
    const node = fakeNode()
    const cutOff: string[] = []
    const limit = new PeerRateLimit(node, OPTS, peer => { cutOff.push(peer) })
    for (let i = 0; i < 5; i++) limit.admit('flooder', 0)
    for (let i = 0; i < 3; i++) assert.equal(limit.admit('flooder', 0), false)
    assert.deepEqual(cutOff, ['flooder'])
    assert.deepEqual(node.hungUp, ['flooder'])
    assert.equal(limit.admit('flooder', 30_000), false, 'still blocked, though its bucket refilled')
    assert.equal(limit.admit('flooder', 60_001), true, 'the block ends')
  })

  it('forgives a slow peer that was refused now and then', () => {
    const node = fakeNode()
    const limit = new PeerRateLimit(node, OPTS)
    for (let t = 0; t < 10_000; t += 50) limit.admit('steady', t)
    assert.deepEqual(node.hungUp, [])
  })
})
