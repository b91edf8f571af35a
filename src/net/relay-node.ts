/**
 * The node `blendnet relay` runs: a circuit relay v2 server that peers
 * behind NAT reserve a slot on and are reached through, and a bootstrap
 * peer of the swarm.
 *
 * - Relay limits are off: libp2p's defaults (128 KiB and 2 minutes per
 *   relayed connection, 15 reservations) cut a scene transfer at 64 KiB
 *   and a quiet connection at 120 s, without an error. A relayed
 *   connection here lasts and carries as much as its peers need.
 * - It subscribes to the jobs topic, with the swarm's validator and
 *   scoring: a gossipsub peer forwards only the topics it is in, and
 *   peers that reach each other only through the relay hear each other's
 *   announcements and claims through it. It acts on none of them.
 */
import { circuitRelayServer, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { PrivateKey } from '@libp2p/interface'
import { JOBS_TOPIC } from '../common/constants.js'
import { UsageError } from '../common/errors.js'
import { logger } from '../common/log.js'
import { coalescedWrites } from './coalesced-writes.js'
import { validateSwarmMessage } from './gossip.js'
import { GOSSIP_SCORE_PARAMS, GOSSIP_SCORE_THRESHOLDS } from './gossip-scoring.js'
import { closeConnectionsBeforeStop } from './graceful-stop.js'
import { privateSwarm } from './pnet.js'

const log = logger('relay')

/** Slots for peers behind NAT: well above any one swarm's workers. */
export const RELAY_MAX_RESERVATIONS = 1024
/** Relayed connections open at once (each is one hop and one stop stream). */
export const RELAY_MAX_CIRCUITS = 4096
/** Connections to the relay itself: every peer of the swarm, and then some. */
const RELAY_MAX_CONNECTIONS = 2048
const STATUS_INTERVAL_MS = 60_000
/** A reservation lasts this long; peers renew it well before. */
const RESERVATION_TTL_MS = 2 * 60 * 60 * 1000

export type RelayServices = {
  relay: CircuitRelayService
  pubsub: GossipSub
  identify: unknown
  ping: unknown
}
export type RelayNode = Libp2p<RelayServices>

export interface RelayNodeOptions {
  privateKey: PrivateKey
  listen: string[]
  /** Addresses to tell peers instead of the listening ones (behind a port forward, a DNS name). */
  announce: string[]
  swarmKey?: Uint8Array
}

export async function createRelayNode (opts: RelayNodeOptions): Promise<RelayNode> {
  let node: RelayNode
  try {
    node = await createLibp2p({
      privateKey: opts.privateKey,
      addresses: { listen: opts.listen, ...(opts.announce.length > 0 ? { announce: opts.announce } : {}) },
      transports: [coalescedWrites(tcp())],
      ...(opts.swarmKey === undefined ? {} : { connectionProtector: privateSwarm(opts.swarmKey) }),
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: {
        maxConnections: RELAY_MAX_CONNECTIONS,
        // Whole offices behind one NAT connect from one address.
        inboundConnectionThreshold: 1000,
        maxIncomingPendingConnections: 100
      },
      services: {
        identify: identify(),
        ping: ping(),
        relay: circuitRelayServer({
          reservations: {
            maxReservations: RELAY_MAX_RESERVATIONS,
            applyDefaultLimit: false,
            reservationTtl: RESERVATION_TTL_MS
          },
          maxInboundHopStreams: RELAY_MAX_CIRCUITS,
          maxOutboundHopStreams: RELAY_MAX_CIRCUITS,
          maxOutboundStopStreams: RELAY_MAX_CIRCUITS
        }),
        pubsub: gossipsub({
          allowPublishToZeroTopicPeers: true,
          runOnLimitedConnection: true,
          scoreParams: GOSSIP_SCORE_PARAMS,
          scoreThresholds: GOSSIP_SCORE_THRESHOLDS
        })
      }
    }) as RelayNode
  } catch (err) {
    const cause = /(EADDRINUSE|EADDRNOTAVAIL|EACCES)[^\n]*/.exec((err as Error).message)
    if (cause !== null) throw new UsageError(`cannot listen on ${opts.listen.join(' ')}: ${cause[0]}`)
    throw err
  }
  closeConnectionsBeforeStop(node)
  forwardJobsTopic(node)
  logRelayEvents(node)
  return node
}

function forwardJobsTopic (node: RelayNode): void {
  const pubsub = node.services.pubsub
  pubsub.topicValidators.set(JOBS_TOPIC, (peer, msg) =>
    validateSwarmMessage(msg, (reason) => {
      log.warn('rejected gossip', { peer: peer.toString(), reason })
    }))
  pubsub.subscribe(JOBS_TOPIC)
}

/** A line per peer that joins or leaves, greppable by peer=, and a status line a minute. */
function logRelayEvents (node: RelayNode): void {
  const counts = (): { peers: number, slots: number } =>
    ({ peers: node.getPeers().length, slots: node.services.relay.reservations.size })
  node.addEventListener('peer:connect', (evt) => {
    log.info('peer connected', { peer: evt.detail.toString(), ...counts() })
  })
  node.addEventListener('peer:disconnect', (evt) => {
    log.info('peer disconnected', { peer: evt.detail.toString(), ...counts() })
  })
  const timer = setInterval(() => { log.info('relay status', counts()) }, STATUS_INTERVAL_MS)
  timer.unref()
  node.addEventListener('stop', () => { clearInterval(timer) })
}
