/**
 * Gossipsub peer scoring for the jobs topic. An honest peer only ever sends
 * messages our validator accepts, so an invalid message (P4) is the signal
 * we score on: a few push the neighbour that sent them out of our mesh,
 * then out of our gossip and publishing, then onto the graylist (its RPCs
 * are dropped unread). Nothing an honest peer does on a quiet topic makes
 * its score negative. Numbers below are for a peer that sent n invalid
 * messages recently, with no credit / with the full credit of +10.
 */
import { createTopicScoreParams, type PeerScoreParams, type PeerScoreThresholds } from '@libp2p/gossipsub/score'
import { JOBS_TOPIC } from '../common/constants.js'

const MINUTE = 60_000

/** The most a peer's topic score can add up to (P1 + P2): bounds the credit
 * a peer can bank by behaving well before it misbehaves. */
const MAX_CREDIT = 10

const jobsTopic = createTopicScoreParams({
  topicWeight: 1,
  // P1: +1 per minute in our mesh, at most +5 (gossipsub counts in ms).
  timeInMeshWeight: 1,
  timeInMeshQuantum: MINUTE,
  timeInMeshCap: 5,
  // P2: +1 per message first delivered to us, at most +5, losing 10% a
  // second: a coordinator announcing every 2 s sits near the cap.
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 5,
  // P3 and P3b off: a message every 2-5 s from a few publishers sets no
  // delivery quota a mesh peer could be expected to meet; P3 would punish
  // honest quiet peers and P3b only carries P3's deficit.
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  // P4: -10 × n². Losing 3% a second, one invalid message is forgotten in
  // about 75 s, close to the 60 s prune backoff that keeps a pruned peer
  // out of the mesh anyway; a graylisted spammer gets one invalid message
  // through about every 10 s.
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.97
})

export const GOSSIP_SCORE_PARAMS: Partial<PeerScoreParams> = {
  topics: { [JOBS_TOPIC]: jobsTopic },
  topicScoreCap: MAX_CREDIT,
  // P6 off: local tests and office NATs put every peer on one IP; the
  // co-location penalty would push honest workers out of the mesh.
  IPColocationFactorWeight: 0
}

/** Below 0 (not a setting) a peer is pruned from the mesh at the next
 * heartbeat: n = 1 without credit, n = 2 with it. */
export const GOSSIP_SCORE_THRESHOLDS: PeerScoreThresholds = {
  // n = 2 (-40 / -30): no more IHAVE gossip to or from it.
  gossipThreshold: -10,
  // n = 3 (-90 / -80): our own messages are no longer sent to it.
  publishThreshold: -50,
  // n = 3 without credit, 4 with it (-150): everything it sends is dropped
  // before validation.
  graylistThreshold: -80,
  // Unreachable: no blendnet peer sends peer exchange (doPX is off), so PX
  // could only be a peer steering whom we dial.
  acceptPXThreshold: MAX_CREDIT + 1,
  // A mesh whose median peer has less than half the possible credit gets
  // a better-scored peer grafted in each minute.
  opportunisticGraftThreshold: MAX_CREDIT / 2
}
