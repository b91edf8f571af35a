import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setLogSink } from '../../src/common/log.js'
import type { StreamHandler } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CLAIM_PROTOCOL, RESULT_PROTOCOL } from '../../src/common/constants.js'
import { openClaimDesk } from '../../src/coordinator/claim-handler.js'
import type { CoordinatorContext } from '../../src/coordinator/context.js'
import { newPeerKey } from '../../src/net/identity.js'
import { signClaim } from '../../src/net/signing.js'
import { createSwarmNode, type SwarmNode } from '../../src/net/node.js'
import { framed, readMessage, writeMessage } from '../../src/net/streams.js'
import { ClaimReplyCodec, ClaimRequestCodec } from '../../src/net/wire.js'
import { claimChannelsOf } from '../../src/worker/claim-channels.js'
import { CoordinatorClient } from '../../src/worker/coordinator-client.js'
import { cpuWorker } from '../helpers/capabilities.js'
import { RendersSolidPngs } from '../helpers/fake-renderers.js'
import {
  addrOf, HEIGHT, startCoordinatorNode, startNode, stoppedAfterEach, stopAll, waitFor, WIDTH
} from '../helpers/swarm.js'

const { withJob, withWorker } = stoppedAfterEach()

/** A coordinator's node whose claim streams are counted as they arrive. */
async function countingClaimStreams (): Promise<{ node: SwarmNode, streams: () => number }> {
  let streams = 0
  const node = await startCoordinatorNode((n) => {
    const handle = n.handle.bind(n)
    n.handle = async (protocol, handler, options) => {
      const counted: StreamHandler = (stream, connection) => { streams++; return handler(stream, connection) }
      await handle(protocol, protocol === CLAIM_PROTOCOL ? counted : handler, options)
    }
  })
  return { node, streams: () => streams }
}

/**
 * A coordinator's node whose claim replies go out until `stop` is set;
 * then each is held back ('hold') or its stream cut instead ('cut').
 */
async function coordinatorAnswering (then: 'hold' | 'cut'): Promise<{ node: SwarmNode, stop: boolean, stopped: number }> {
  const control = { node: undefined as unknown as SwarmNode, stop: false, stopped: 0 }
  control.node = await startCoordinatorNode((n) => {
    const handle = n.handle.bind(n)
    n.handle = async (protocol, handler, options) => {
      const answering: StreamHandler = (stream, connection) => {
        const send = stream.send.bind(stream)
        stream.send = (data) => {
          if (!control.stop) return send(data)
          control.stopped++
          if (then === 'cut') stream.abort(new Error('cut by the test'))
          return true
        }
        return handler(stream, connection)
      }
      await handle(protocol, protocol === CLAIM_PROTOCOL ? answering : handler, options)
    }
  })
  return control
}

/** Counts the claims that failed (no reply), in every worker of this process. */
function claimOutcomes (): { failed: number, restore: () => void } {
  const claim = CoordinatorClient.prototype.claim
  const outcomes = {
    failed: 0,
    restore: () => { CoordinatorClient.prototype.claim = claim }
  }
  CoordinatorClient.prototype.claim = async function (this: CoordinatorClient, ...args) {
    return await claim.apply(this, args).catch((err: unknown) => { outcomes.failed++; throw err })
  }
  return outcomes
}

describe('the claim channel', { timeout: 60_000 }, () => {
  it('is opened as the worker meets the coordinator, before the job, and carries every claim of the job', async () => {
    const { node, streams } = await countingClaimStreams()
    const job = await withJob([1, 2, 3, 4, 5, 6], 1, { node })
    await withWorker(new RendersSolidPngs(WIDTH, HEIGHT), [addrOf(node)])
    await waitFor(() => streams() === 1, 'the worker to open its claim channel ahead of the job')

    const outcome = await job.coordinator.run()
    assert.equal(outcome.succeeded, true)
    const grants = job.events.filter(e => e.type === 'chunk-granted')
    assert.ok(grants.length >= 6, `${grants.length} grants`)
    assert.equal(streams(), 1, 'one stream for all claims')
    assert.deepEqual(job.events.filter(e => e.type === 'message-rejected'), [])
  })

  it('answers a request made before the job starts: wait for its announcement', async () => {
    const job = await withJob([1, 2], 1)
    const key = await newPeerKey()
    const worker = await startNode()
    try {
      await worker.dial(multiaddr(addrOf(job.node)))
      const client = new CoordinatorClient(worker, key, job.node.peerId, job.spec.jobId)
      const reply = await client.claim(0, cpuWorker())
      assert.equal(reply.ok, false)
      assert.equal(reply.wait, true)
      assert.match(reply.reason, /not started/)
    } finally {
      await worker.stop()
    }
  })

  it('sends requests made together one after the other, each getting its own reply', async () => {
    const job = await withJob([1, 2, 3], 3)
    const run = job.coordinator.run()
    // Registered once its claims are answered.
    await waitFor(() => job.node.getProtocols().includes(RESULT_PROTOCOL), 'the job to start')
    const key = await newPeerKey()
    const worker = await createSwarmNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false })
    try {
      await worker.dial(multiaddr(addrOf(job.node)))
      const channels = claimChannelsOf(worker)
      const jobId = job.spec.jobId
      const claimed = await signClaim(key, { jobId, chunkId: 0, capabilities: cpuWorker() })
      const [claim, renewal, unknown] = await Promise.all([
        channels.request(job.node.peerId, { claim: claimed }),
        channels.request(job.node.peerId, { renewal: { jobId, chunkId: 0 } }),
        channels.request(job.node.peerId, { renewal: { jobId, chunkId: 7 } })
      ])
      assert.equal(claim.ok, true, claim.reason)
      assert.deepEqual(claim.frames, [1, 2, 3])
      assert.equal(renewal.ok, true, renewal.reason)
      assert.deepEqual(renewal.frames, [1, 2, 3])
      assert.equal(unknown.ok, false)
      assert.equal((await channels.request(job.node.peerId, { release: { jobId, chunkId: 0 } })).ok, true)
    } finally {
      job.coordinator.cancel('test over')
      await run
      await worker.stop()
    }
  })

  it('is not held against a worker when it ends between requests; one node runs one job', async () => {
    const job = await withJob([1, 2], 1)
    const run = job.coordinator.run()
    await waitFor(() => job.node.getProtocols().includes(RESULT_PROTOCOL), 'the job to start')
    const worker = await startNode()
    try {
      const stream = await worker.dialProtocol(multiaddr(addrOf(job.node)), CLAIM_PROTOCOL)
      const lp = framed(stream)
      for (const chunkId of [0, 1]) {
        await writeMessage(lp, ClaimRequestCodec, { renewal: { jobId: job.spec.jobId, chunkId } })
        assert.equal((await readMessage(lp, ClaimReplyCodec)).ok, false, 'nothing held: refused, on the same stream')
      }
      await stream.close()
      const reset = await worker.dialProtocol(multiaddr(addrOf(job.node)), CLAIM_PROTOCOL)
      reset.abort(new Error('gone'))
      await new Promise(resolve => setTimeout(resolve, 200))
      assert.deepEqual(job.events.filter(e => e.type === 'message-rejected'), [])
      const desk = await openClaimDesk(job.node)
      assert.throws(() => desk.attach({ job: { jobId: 'other' } } as unknown as CoordinatorContext), /already coordinates job/)
    } finally {
      job.coordinator.cancel('test over')
      await run
      await worker.stop()
    }
  })

  it('a claim on its way as the job ends is let go quietly; one cut while the job runs is reported', async () => {
    const claims = claimOutcomes()
    const lines: string[] = []
    setLogSink((level, line) => { lines.push(`${level} ${line}`) })
    try {
      // Once both chunks are out, claims get no reply: the job's end cuts them.
      const ending = await coordinatorAnswering('hold')
      let grants = 0
      const job = await withJob([1, 2], 1, {
        node: ending.node,
        onEvent: (e) => { if (e.type === 'chunk-granted' && ++grants === 2) setTimeout(() => { ending.stop = true }, 100) }
      })
      const run = job.coordinator.run()
      // The fast worker, done first, asks for a copy of the slow one's chunk.
      await withWorker(new RendersSolidPngs(WIDTH, HEIGHT, 1000), [addrOf(ending.node)])
      await withWorker(new RendersSolidPngs(WIDTH, HEIGHT, 300), [addrOf(ending.node)])
      assert.equal((await run).succeeded, true)
      await waitFor(() => claims.failed > 0, 'the claim on its way to fail as the job ended')
      assert.ok(ending.stopped > 0)
      assert.deepEqual(lines.filter(l => l.startsWith('warn') && l.includes('claim')), [])

      // The same cut while the job still runs is the coordinator's fault.
      const cutting = await coordinatorAnswering('cut')
      const live = await withJob([1, 2], 1, {
        node: cutting.node,
        onEvent: (e) => { if (e.type === 'chunk-granted') cutting.stop = true }
      })
      const running = live.coordinator.run()
      await withWorker(new RendersSolidPngs(WIDTH, HEIGHT), [addrOf(cutting.node)])
      await waitFor(() => lines.some(l => l.startsWith('warn') && l.includes('coordinator did not answer a claim')),
        'the cut claim to be reported')
      live.coordinator.cancel('test over')
      await running
    } finally {
      setLogSink(undefined)
      claims.restore()
    }
  })

  it('is opened again after a coordinator closed it, or after a request that got no reply', async () => {
    // A coordinator of the older kind answers one request a stream and
    // closes it; its third stream it never answers.
    const coordinator = await startNode()
    let served = 0
    await coordinator.handle(CLAIM_PROTOCOL, (stream) => {
      const lp = framed(stream)
      const n = ++served
      void (async () => {
        const req = await readMessage(lp, ClaimRequestCodec)
        if (n === 3) return
        await writeMessage(lp, ClaimReplyCodec, { ok: true, reason: `answer ${n}`, leaseMs: 0, frames: 'renewal' in req ? [req.renewal.chunkId] : [] })
        await stream.close()
      })().catch(() => {})
    })
    const worker = await startNode()
    try {
      await worker.dial(multiaddr(addrOf(coordinator)))
      const channels = claimChannelsOf(worker)
      const peer = peerIdFromString(coordinator.peerId.toString())
      const renew = async (chunkId: number): Promise<string> =>
        (await channels.request(peer, { renewal: { jobId: 'j', chunkId } })).reason
      assert.equal(await renew(1), 'answer 1')
      await waitFor(() => worker.getConnections(peer).flatMap(c => c.streams)
        .every(s => s.protocol !== CLAIM_PROTOCOL), 'the coordinator to close the stream')
      assert.equal(await renew(2), 'answer 2')
      await assert.rejects(renew(3), /abort|timeout/i)
      assert.equal(await renew(4), 'answer 4')
      assert.equal(served, 4)
    } finally {
      await stopAll(worker, coordinator)
    }
  })
})
