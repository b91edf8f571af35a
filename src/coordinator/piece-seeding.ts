/**
 * The coordinator's side of shared transfers: it serves pieces of every
 * file of its job (it holds them all), and it is the job's tracker: it
 * remembers which workers asked about each file and names them to the
 * next ones, so that workers fetch pieces from each other and the
 * coordinator uploads each piece about once.
 */
import type { PeerId } from '@libp2p/interface'
import { MAX_PEERS_PER_REPLY } from '../common/constants.js'
import { logger } from '../common/log.js'
import { hex } from '../net/fetch.js'
import { PieceServer, type ServedFile } from '../net/piece-server.js'
import type { PeerAddrs, PieceRequest } from '../net/piece-wire.js'
import { Bitfield, pieceCount, pieceListOf } from '../net/pieces.js'
import type { CoordinatorContext } from './context.js'

const log = logger('coordinator:pieces')

/** Workers remembered per file; the oldest go first. */
const MAX_TRACKED_PER_FILE = 256
/** Addresses given per peer. */
const MAX_ADDRS_PER_PEER = 8

/** The coordinator's node and job, its per-peer rate limit (`admit`),
 * and who may claim (only those are named to others). */
export type PieceSeedingOptions = Pick<CoordinatorContext, 'node' | 'job' | 'admit' | 'mayClaim'>

export class PieceSeeding {
  private readonly server: PieceServer
  private readonly files = new Map<string, ServedFile>()
  /** hash → peer → when it last asked. */
  private readonly askers = new Map<string, Map<string, number>>()

  constructor (private readonly opts: PieceSeedingOptions) {
    for (const file of opts.job.files) {
      const pieces = pieceListOf(file)
      if (pieces === undefined) continue
      const have = Bitfield.full(pieceCount(file.size, pieces.pieceBytes))
      this.files.set(hex(file.sha256), {
        size: file.size,
        pieceBytes: pieces.pieceBytes,
        have: () => have,
        fetching: () => undefined,
        path: () => file.path
      })
    }
    this.server = new PieceServer({
      node: opts.node,
      admit: opts.admit,
      lookup: (request) => this.lookup(request),
      onAsked: (peer, request) => { this.track(peer.toString(), hex(request.sha256)) },
      peersOf: async (asker, request) => await this.peersOf(asker, hex(request.sha256))
    })
  }

  /** Piece bytes uploaded to workers since start. */
  get bytesServed (): number {
    return this.server.bytesServed
  }

  async start (): Promise<void> {
    await this.server.start()
  }

  async stop (): Promise<void> {
    await this.server.stop()
  }

  private lookup (request: PieceRequest): ServedFile | undefined {
    const ours = request.coordinator === this.opts.node.peerId.toString() &&
      request.jobId === this.opts.job.jobId
    return ours ? this.files.get(hex(request.sha256)) : undefined
  }

  private track (peer: string, hash: string): void {
    if (!this.opts.mayClaim(peer)) return
    let peers = this.askers.get(hash)
    if (peers === undefined) {
      peers = new Map()
      this.askers.set(hash, peers)
    }
    peers.delete(peer)
    peers.set(peer, Date.now())
    if (peers.size > MAX_TRACKED_PER_FILE) peers.delete(peers.keys().next().value as string)
  }

  /** The most recent askers but the asker, with the addresses we know. */
  private async peersOf (asker: PeerId, hash: string): Promise<PeerAddrs[]> {
    const others = [...(this.askers.get(hash)?.keys() ?? [])]
      .filter(p => p !== asker.toString()).reverse().slice(0, MAX_PEERS_PER_REPLY)
    const named: PeerAddrs[] = []
    for (const id of others) {
      const connection = this.opts.node.getConnections().find(c => c.remotePeer.toString() === id)
      if (connection === undefined) continue
      const peer = await this.opts.node.peerStore.get(connection.remotePeer).catch(() => undefined)
      const addrs = (peer?.addresses ?? []).slice(0, MAX_ADDRS_PER_PEER).map(a => a.multiaddr.bytes)
      named.push({ id, addrs })
    }
    log.debug('named peers', {
      job: this.opts.job.jobId, peer: asker.toString(), hash: hash.slice(0, 16), peers: named.length
    })
    return named
  }
}
