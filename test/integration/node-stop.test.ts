/**
 * What a node says last, before it stops, reaches its peers: a worker's
 * "leaving" gossip is its last word. The hard case is a connection the
 * peer dialed (as `submit --bootstrap <worker>` dials the worker) while
 * the peer is still sending: libp2p's stop used to destroy such a socket
 * with the peer's bytes unread, and the TCP reset that followed made the
 * peer's kernel drop our last message.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { JOBS_TOPIC } from '../../src/common/constants.js'
import { setLogSink } from '../../src/common/log.js'
import type { SwarmNode } from '../../src/net/node.js'
import { addrOf, startNode, waitFor } from '../helpers/swarm.js'

/** Rounds: one in two or more lost its last message before the fix. */
const ROUNDS = 8

describe('a node that stops', () => {
  it('delivers the gossip it published just before, on a connection the peer dialed while the peer talks', async () => {
    let delivered = 0
    for (let round = 0; round < ROUNDS; round++) {
      const peer = await startNode()
      const leaver = await startNode()
      let chatter: { stop: () => Promise<void> } | undefined
      try {
        const last = new TextEncoder().encode(`last word ${round}`)
        let heard = false
        peer.services.pubsub.subscribe(JOBS_TOPIC)
        leaver.services.pubsub.subscribe(JOBS_TOPIC)
        peer.services.pubsub.addEventListener('message', (evt) => {
          if (evt.detail.type === 'signed' && evt.detail.from.equals(leaver.peerId) &&
            new TextDecoder().decode(evt.detail.data) === `last word ${round}`) heard = true
        })
        await peer.dial(multiaddr(addrOf(leaver)))
        await waitFor(() => subscribed(leaver) && subscribed(peer), 'both to see the other on the topic')

        chatter = keepPublishing(peer)
        await sleep(20)
        const { recipients } = await leaver.services.pubsub.publish(JOBS_TOPIC, last)
        assert.equal(recipients.length, 1, 'the message was sent to the peer')
        await leaver.stop()
        await waitFor(() => heard, `round ${round}: the peer to receive the last message`, 2000)
        delivered++
      } finally {
        await chatter?.stop()
        await leaver.stop()
        await peer.stop()
      }
    }
    assert.equal(delivered, ROUNDS)
  })
})

describe('a node that stops, with bootstrap peers', () => {
  it('does not report them lost as it closes its connections, where a peer that goes is reported', async () => {
    const lines: string[] = []
    setLogSink((_level, line) => { lines.push(line) })
    const bootstrap = await startNode()
    try {
      const stopping = await startNode([addrOf(bootstrap)])
      await waitFor(() => stopping.getConnections().length > 0, 'the node to reach its bootstrap peer')
      await stopping.stop()
      await sleep(200)
      assert.deepEqual(lines.filter(l => l.includes('lost bootstrap peer')), [])

      // The same line does come when the bootstrap peer is the one to go.
      const staying = await startNode([addrOf(bootstrap)])
      await waitFor(() => staying.getConnections().length > 0, 'the second node to reach its bootstrap peer')
      await bootstrap.stop()
      await waitFor(() => lines.some(l => l.includes('lost bootstrap peer')), 'the bootstrap peer reported lost', 3000)
      await staying.stop()
    } finally {
      setLogSink(undefined)
      await bootstrap.stop()
    }
  })
})

function subscribed (node: SwarmNode): boolean {
  return node.services.pubsub.getSubscribers(JOBS_TOPIC).length > 0
}

/** The peer sends 2 KB messages as fast as it can until stopped. */
function keepPublishing (node: SwarmNode): { stop: () => Promise<void> } {
  let going = true
  const loop = (async () => {
    for (let n = 0; going; n++) {
      await node.services.pubsub.publish(JOBS_TOPIC, new Uint8Array(2000).fill(n % 256)).catch(() => {})
      await sleep(1)
    }
  })()
  return { stop: async () => { going = false; await loop } }
}
