/**
 * The libp2p node every blendnet peer runs: TCP, noise, yamux, identify,
 * gossipsub on the jobs topic (scored: gossip-scoring.ts). Peers join the
 * swarm through `--bootstrap` addresses (kept connected:
 * bootstrap-keeper.ts) or, on a LAN, mDNS. With a swarm key, every
 * connection is first wrapped by pnet (pnet.ts): peers without the key
 * cannot connect.
 *
 * Behind NAT: a peer that connects to a `blendnet relay` (relay-node.ts)
 * reserves a slot on it and is reachable at a /p2p-circuit address
 * through it; DCUtR then tries a direct connection (hole punching) where
 * the peers have public addresses. No kad-dht: blendnet looks nothing up
 * in one, and its random walk (which relay discovery starts whenever no
 * relay is reserved) spins a core when the table is empty.
 */
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { mdns } from '@libp2p/mdns'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { PeerDiscovery, PrivateKey } from '@libp2p/interface'
import { UsageError } from '../common/errors.js'
import { logger } from '../common/log.js'
import { keepBootstrapPeers } from './bootstrap-keeper.js'
import { coalescedWrites } from './coalesced-writes.js'
import { closeConnectionsBeforeStop } from './graceful-stop.js'
import { GOSSIP_SCORE_PARAMS, GOSSIP_SCORE_THRESHOLDS } from './gossip-scoring.js'
import { privateSwarm } from './pnet.js'
import { prepareCodecs } from './wire.js'

const log = logger('net')

export type SwarmServices = {
  pubsub: GossipSub
  identify: unknown
  ping: unknown
  dcutr: unknown
}
export type SwarmNode = Libp2p<SwarmServices>

export interface SwarmNodeOptions {
  privateKey: PrivateKey
  /** Multiaddrs to listen on, e.g. /ip4/127.0.0.1/tcp/0. */
  listen: string[]
  /** Peers to join through; each address must end in /p2p/<peer id>. */
  bootstrap: string[]
  /** Find peers on the LAN by multicast DNS. Never on in tests. */
  mdns: boolean
  /** The private swarm's 32-byte pre-shared key; none for an open swarm. */
  swarmKey?: Uint8Array
  /** Reserve a slot on relays it connects to (default true). */
  reachableThroughRelays?: boolean
  /** A submit's node: says so to the peers it meets (COORDINATOR_AGENT). */
  coordinator?: boolean
}

/**
 * How a submit's node names itself in identify: a worker that meets one
 * may start a Blender ahead of its job (blender/standby.ts). A claim only,
 * like any peer's word: it earns a peer no more than that.
 */
export const COORDINATOR_AGENT = 'blendnet-coordinator'

export function isCoordinatorAgent (agentVersion: string | undefined): boolean {
  return agentVersion?.split('/')[0] === COORDINATOR_AGENT
}

export async function createSwarmNode (opts: SwarmNodeOptions): Promise<SwarmNode> {
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  if (opts.bootstrap.length > 0) {
    peerDiscovery.push(bootstrap({ list: opts.bootstrap, timeout: 0 }))
  }
  if (opts.mdns) peerDiscovery.push(mdns())

  // Before any message comes: the first ones come all at once.
  prepareCodecs()
  const node = await startLibp2p(opts, peerDiscovery)
  closeConnectionsBeforeStop(node)
  runOverRelays(node)
  logRelayUse(node)
  dialDiscoveredPeers(node)
  keepBootstrapPeers(node, opts.bootstrap.map(a => multiaddr(a)))
  return node
}

async function startLibp2p (opts: SwarmNodeOptions,
  peerDiscovery: Array<(components: any) => PeerDiscovery>): Promise<SwarmNode> {
  try {
    return await createNode(opts, peerDiscovery)
  } catch (err) {
    const message = (err as Error).message
    const cause = /(EADDRINUSE|EADDRNOTAVAIL|EACCES)[^\n]*/.exec(message)
    if (cause !== null) {
      throw new UsageError(`cannot listen on ${opts.listen.join(' ')}: ${cause[0]}`)
    }
    throw err
  }
}

async function createNode (opts: SwarmNodeOptions,
  peerDiscovery: Array<(components: any) => PeerDiscovery>): Promise<SwarmNode> {
  return await createLibp2p({
    privateKey: opts.privateKey,
    ...(opts.coordinator === true ? { nodeInfo: { userAgent: `${COORDINATOR_AGENT}/1` } } : {}),
    // '/p2p-circuit': reserve a slot on a relay once connected to one;
    // a peer nobody dials (`status`) takes none.
    addresses: { listen: opts.reachableThroughRelays === false ? opts.listen : [...opts.listen, '/p2p-circuit'] },
    transports: [coalescedWrites(tcp()), circuitRelayTransport()],
    ...(opts.swarmKey === undefined ? {} : { connectionProtector: privateSwarm(opts.swarmKey) }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionManager: {
      // Many workers on one host or behind one NAT connect at once.
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 100
    },
    services: {
      identify: identify(),
      ping: ping(),
      dcutr: dcutr(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        // A relay may limit its circuits; gossip still flows over them.
        runOnLimitedConnection: true,
        scoreParams: GOSSIP_SCORE_PARAMS,
        scoreThresholds: GOSSIP_SCORE_THRESHOLDS
      })
    }
  }) as SwarmNode
}

/** Discovery only reports peers; connect to them so gossip can flow. */
function dialDiscoveredPeers (node: SwarmNode): void {
  node.addEventListener('peer:discovery', (evt) => {
    const peer = evt.detail
    if (peer.id.equals(node.peerId)) return
    if (node.getConnections(peer.id).length > 0) return
    node.dial(peer.id).catch((err: Error) => {
      log.debug('could not dial discovered peer', { peer: peer.id.toString(), err: err.message })
    })
  })
}

/**
 * Every blendnet protocol (claims, files, frames, logs, whatever is added
 * later) must also work between two peers that reach each other only
 * through a relay. A relay that limits its circuits marks them limited,
 * and libp2p then refuses any protocol not opted in on both sides; the
 * opt-in is made the default here, once, for every handle and dial.
 */
function runOverRelays (node: SwarmNode): void {
  const handle = node.handle.bind(node)
  node.handle = async (protocol, handler, options) =>
    await handle(protocol, handler, { runOnLimitedConnection: true, ...options })
  const dialProtocol = node.dialProtocol.bind(node)
  node.dialProtocol = async (peer, protocols, options) =>
    await dialProtocol(peer, protocols, { runOnLimitedConnection: true, ...options })
}

/** Greppable lines for what goes through a relay: `relay=` and `peer=`. */
function logRelayUse (node: SwarmNode): void {
  let reachableAt = new Set<string>()
  node.addEventListener('self:peer:update', () => {
    const circuits = new Set(node.getMultiaddrs().map(String).filter(a => a.includes('/p2p-circuit')))
    for (const addr of circuits) {
      if (!reachableAt.has(addr)) log.info('reachable through relay', { relay: addr })
    }
    for (const addr of reachableAt) {
      if (!circuits.has(addr)) log.info('relay slot lost', { relay: addr })
    }
    reachableAt = circuits
  })
  node.addEventListener('connection:open', (evt) => {
    const conn = evt.detail
    if (!conn.remoteAddr.toString().includes('/p2p-circuit')) return
    log.info('relayed connection', {
      peer: conn.remotePeer.toString(), relay: conn.remoteAddr.toString(), direction: conn.direction
    })
  })
}
