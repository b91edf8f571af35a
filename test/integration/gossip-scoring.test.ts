/**
 * Gossipsub scoring on the jobs topic between real nodes on 127.0.0.1: a
 * peer that keeps publishing invalid messages loses its place in a
 * coordinator's mesh and is graylisted, while an honest worker keeps its
 * place and a score of at least 0, and the job carries on.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TopicValidatorResult, type GossipSub } from '@libp2p/gossipsub'
import { JOBS_TOPIC, PROTOCOL_VERSION } from '../../src/common/constants.js'
import { validateSwarmMessage } from '../../src/net/gossip.js'
import { GOSSIP_SCORE_THRESHOLDS } from '../../src/net/gossip-scoring.js'
import { encodeSwarmMessage } from '../../src/net/wire.js'
import { HangsUntilAborted } from '../helpers/fake-renderers.js'
import { addrOf, startJob, startNode, startWorker, stopAll, waitFor } from '../helpers/swarm.js'

/** What gossipsub has at run time but the type of its factory lacks. */
interface ScoredPubsub {
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
}

function scored (pubsub: GossipSub): ScoredPubsub {
  const p = pubsub as unknown as Partial<ScoredPubsub>
  if (typeof p.getScore !== 'function' || typeof p.getMeshPeers !== 'function') {
    throw new Error('this gossipsub has no getScore/getMeshPeers')
  }
  return { getScore: p.getScore.bind(pubsub), getMeshPeers: p.getMeshPeers.bind(pubsub) }
}

/** Payloads the validator rejects: not protobuf, no body, a path as job id. */
const INVALID = [
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
  Uint8Array.of(0x08, PROTOCOL_VERSION),
  encodeSwarmMessage({ finished: { jobId: '../../victim', succeeded: true } })
]

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('gossipsub scoring on the jobs topic', { timeout: 60_000 }, () => {
  it('the hostile payloads are ones the validator rejects', () => {
    for (const data of INVALID) {
      const verdict = validateSwarmMessage({ type: 'unsigned', topic: JOBS_TOPIC, data }, () => {})
      assert.equal(verdict, TopicValidatorResult.Reject)
    }
  })

  it('a peer publishing invalid messages is pruned and graylisted; an honest worker stays', async (t) => {
    const job = await startJob([1, 2, 3, 4], 1, { workerWaitMs: 600_000 })
    const run = job.coordinator.run()
    const honest = await startWorker(new HangsUntilAborted(), [addrOf(job.node)])
    const hostile = await startNode([addrOf(job.node)])
    hostile.services.pubsub.subscribe(JOBS_TOPIC)

    const view = scored(job.node.services.pubsub)
    const workerView = scored(honest.node.services.pubsub)
    const coordinatorId = job.node.peerId.toString()
    const honestId = honest.node.peerId.toString()
    const hostileId = hostile.peerId.toString()
    const inMesh = (id: string): boolean => view.getMeshPeers(JOBS_TOPIC).includes(id)
    const rejected = (): number => job.events.filter(e =>
      e.type === 'message-rejected' && e.peer === hostileId && e.reason.startsWith('malformed-gossip')).length
    let heardFromCoordinator = 0
    honest.node.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.type === 'signed' && evt.detail.from.equals(job.node.peerId)) heardFromCoordinator++
    })

    // Each side's score for the other: a worker announcing its presence
    // every 5 s, a coordinator announcing its job every 2 s.
    const honestScores: number[] = []
    const sampler = setInterval(() => {
      honestScores.push(view.getScore(honestId), workerView.getScore(coordinatorId))
    }, 50)
    let sent = 0
    let spam: NodeJS.Timeout | undefined
    try {
      await waitFor(() => inMesh(honestId) && inMesh(hostileId), 'both peers in the coordinator\'s mesh')
      const started = Date.now()
      spam = setInterval(() => {
        hostile.services.pubsub.publish(JOBS_TOPIC, INVALID[sent++ % INVALID.length]).catch(() => {})
      }, 100)

      const graylist = GOSSIP_SCORE_THRESHOLDS.graylistThreshold
      await waitFor(() => view.getScore(hostileId) < graylist, 'the hostile peer\'s score to fall below the graylist')
      t.diagnostic(`graylisted after ${Date.now() - started} ms, ${sent} sent, ${rejected()} rejected, ` +
        `score ${view.getScore(hostileId).toFixed(1)}`)
      await waitFor(() => !inMesh(hostileId), 'the hostile peer to leave the mesh')
      t.diagnostic(`out of the mesh after ${Date.now() - started} ms`)

      // Graylisted: once gossipsub's 1 s grace for peers that scored >= 0
      // is over, what the peer sends is dropped before validation.
      await sleep(1500)
      const before = { sent, rejected: rejected() }
      await waitFor(() => sent >= before.sent + 10, 'ten more invalid messages')
      await sleep(300)
      assert.equal(rejected(), before.rejected, 'a graylisted peer\'s messages reached the validator')
      assert.ok(view.getScore(hostileId) < graylist)
      assert.equal(inMesh(hostileId), false)

      // Neither honest peer's score went below 0; the worker kept its place
      // and still hears the coordinator.
      const heard = heardFromCoordinator
      await waitFor(() => heardFromCoordinator > heard, 'an announcement to reach the worker')
      const lowest = Math.min(...honestScores)
      t.diagnostic(`honest: ${honestScores.length} samples, lowest ${lowest.toFixed(2)}, now worker ` +
        `${view.getScore(honestId).toFixed(2)}, coordinator ${workerView.getScore(coordinatorId).toFixed(2)}; ` +
        `hostile ${view.getScore(hostileId).toFixed(1)}`)
      assert.ok(lowest >= 0, `an honest peer's score fell to ${lowest}`)
      assert.ok(inMesh(honestId))
    } finally {
      clearInterval(spam)
      clearInterval(sampler)
      await honest.worker.stop()
      job.coordinator.cancel('test over')
      await run
      await stopAll(honest.node, hostile, job.node)
    }
  })
})
