/**
 * The libp2p node every blendnet peer runs: TCP, noise, yamux, identify,
 * gossipsub on the jobs topic (scored: gossip-scoring.ts), and a private
 * kad-dht. Peers join the swarm through `--bootstrap` addresses (kept
 * connected) or, on a LAN, mDNS. With a swarm key, every connection is
 * first wrapped by pnet (pnet.ts): peers without the key cannot connect.
 */
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { PeerDiscovery, PrivateKey } from '@libp2p/interface'
import { KAD_PROTOCOL } from '../common/constants.js'
import { UsageError } from '../common/errors.js'
import { logger } from '../common/log.js'
import { GOSSIP_SCORE_PARAMS, GOSSIP_SCORE_THRESHOLDS } from './gossip-scoring.js'
import { privateSwarm } from './pnet.js'

const log = logger('net')

export type SwarmServices = {
  pubsub: GossipSub
  dht: KadDHT
  identify: unknown
  ping: unknown
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
}

/** How often unreachable bootstrap peers are dialled again. */
const REDIAL_INTERVAL_MS = 5000

export async function createSwarmNode (opts: SwarmNodeOptions): Promise<SwarmNode> {
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  if (opts.bootstrap.length > 0) {
    peerDiscovery.push(bootstrap({ list: opts.bootstrap, timeout: 0 }))
  }
  if (opts.mdns) peerDiscovery.push(mdns())

  const node = await startLibp2p(opts, peerDiscovery)
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
    addresses: { listen: opts.listen },
    transports: [tcp()],
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
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        scoreParams: GOSSIP_SCORE_PARAMS,
        scoreThresholds: GOSSIP_SCORE_THRESHOLDS
      }),
      dht: kadDHT({
        protocol: KAD_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper
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
 * Bootstrap peers are our way into the swarm: if a connection drops (the
 * peer restarted, the network blinked), dial it again until we stop.
 */
function keepBootstrapPeers (node: SwarmNode, addrs: Multiaddr[]): void {
  if (addrs.length === 0) return
  const timer = setInterval(() => {
    for (const addr of addrs) {
      const id = addr.getComponents().find(c => c.name === 'p2p')?.value
      const connected = node.getConnections().some(c => c.remotePeer.toString() === id)
      if (connected || node.status !== 'started') continue
      node.dial(addr).catch((err: Error) => {
        log.debug('bootstrap peer unreachable', { addr: addr.toString(), err: err.message })
      })
    }
  }, REDIAL_INTERVAL_MS)
  timer.unref()
  node.addEventListener('stop', () => { clearInterval(timer) })
}
