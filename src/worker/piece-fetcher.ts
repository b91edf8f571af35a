/**
 * Fetches one job file in pieces from several peers at once: the
 * coordinator (which holds everything) and the workers its tracker names
 * or that ask us about the file. Each piece is checked against the
 * manifest's hash on arrival; a peer that sends a bad one is dropped and
 * its pieces asked of others; a broken span is asked again elsewhere,
 * keeping every piece that arrived whole. See piece-picker.ts for which
 * piece comes from whom.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import {
  HAVE_REFRESH_MS, MAX_PEER_SOURCES, PIECE_STALL_MS, SPAN_PIECES, SPANS_IN_FLIGHT, SPANS_PER_PEER,
  SPANS_TO_COORDINATOR, TRACKER_REFRESH_MS, WAIT_FOR_PEERS_MS
} from '../common/constants.js'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import { hex } from '../net/fetch.js'
import type { SwarmNode } from '../net/node.js'
import {
  askHave, askPeers, CorruptPieceError, fetchSpan, type FileAddress
} from '../net/piece-client.js'
import type { PeerAddrs } from '../net/piece-wire.js'
import { Bitfield, pieceRange } from '../net/pieces.js'
import { TransferError } from '../net/streams.js'
import type { HeldFile } from './held-file.js'
import { blockOrder, pickSpan, type SourceView, type SpanPick } from './piece-picker.js'

const log = logger('worker:pieces')

/** A peer that failed this many requests in a row is dropped. */
const MAX_PEER_FAILURES = 3
/** Corrupt pieces from the coordinator itself before the fetch gives up. */
const MAX_COORDINATOR_CORRUPT = 3
/** How long the first look (tracker, peers' pieces) may hold up the start. */
const FIRST_LOOK_MS = 2000
/**
 * Before asking the coordinator, what peers hold and fetch must be this
 * fresh: a stale view is how two workers come to ask it for one piece.
 * A peer slow to answer holds this up for POLL_WAIT_MS at most.
 */
const FRESH_MS = 100
const POLL_WAIT_MS = 1000

interface Source extends SourceView {
  id: PeerId
  key: string
  failures: number
  retryAt: number
  polledAt: number
  pollStarted: number
  polling: boolean
  dropped: boolean
}

export interface PieceFetchOptions {
  node: SwarmNode
  coordinator: PeerId
  jobId: string
  file: HeldFile
  /** Peers caught sending corrupt pieces: never asked again. */
  distrusted: Set<string>
  signal?: AbortSignal
  /** Each verified piece and the peer it came from. */
  onPiece?: (index: number, from: string) => void
}

export class PieceFetch {
  bytesFromCoordinator = 0
  bytesFromPeers = 0
  private readonly sources = new Map<string, Source>()
  private readonly address: FileAddress
  private readonly stop = new AbortController()
  private order: number[]
  private wake?: () => void
  private fatal?: Error
  private lastProgress = Date.now()
  private waitingSince?: number
  private coordinatorCorrupt = 0
  private done = false

  constructor (private readonly opts: PieceFetchOptions) {
    this.address = { coordinator: opts.coordinator.toString(), jobId: opts.jobId, sha256: opts.file.sha256 }
    this.order = blockOrder(opts.file.held.size, SPAN_PIECES)
    this.addSource(opts.coordinator, true)
    opts.signal?.addEventListener('abort', () => { this.stop.abort() }, { once: true })
  }

  private get fields (): Record<string, string | number> {
    return { job: this.opts.jobId, hash: hex(this.opts.file.sha256).slice(0, 16) }
  }

  /** A peer said it fetches this file too (it asked us about it). */
  addPeer (peer: PeerId | string): void {
    const key = peer.toString()
    if (this.sources.has(key) || this.opts.distrusted.has(key)) return
    if (key === this.opts.node.peerId.toString()) return
    if (this.liveSources().filter(s => !s.coordinator).length >= MAX_PEER_SOURCES) return
    this.addSource(typeof peer === 'string' ? peerIdFromString(peer) : peer, false)
    this.wake?.()
  }

  private addSource (id: PeerId, coordinator: boolean): void {
    this.sources.set(id.toString(), {
      id, key: id.toString(), coordinator, inFlight: 0, failures: 0, retryAt: 0, polledAt: 0, pollStarted: 0,
      polling: false, dropped: false, usable: true,
      capacity: coordinator ? SPANS_TO_COORDINATOR : SPANS_PER_PEER,
      have: coordinator ? Bitfield.full(this.opts.file.held.size) : undefined
    })
  }

  async run (): Promise<void> {
    const file = this.opts.file
    await file.openForPieces()
    log.info('fetching file in pieces', { ...this.fields, pieces: file.held.size, held: file.held.count })
    const tracking = this.track()
    try {
      await this.firstLook()
      while (!file.held.full) {
        this.check()
        this.pollPeers()
        this.fill()
        await this.nextEvent()
      }
    } finally {
      this.done = true
      this.stop.abort()
      this.wake?.()
      await tracking
      await file.closeHandle()
    }
    await file.finish()
    log.info('file fetched', {
      ...this.fields, fromCoordinator: this.bytesFromCoordinator, fromPeers: this.bytesFromPeers
    })
  }

  private check (): void {
    if (this.fatal !== undefined) throw this.fatal
    if (this.opts.signal?.aborted === true) throw new TransferError('fetch stopped')
    if (Date.now() - this.lastProgress > PIECE_STALL_MS) {
      const peers = this.liveSources().length
      throw new TransferError(`no piece arrived for ${PIECE_STALL_MS / 1000} s from ${peers} peers`)
    }
  }

  private liveSources (): Source[] {
    return [...this.sources.values()].filter(s => !s.dropped)
  }

  private inFlight (): number {
    return this.liveSources().reduce((n, s) => n + s.inFlight, 0)
  }

  /** Asks the tracker and the peers it names before the first request. */
  private async firstLook (): Promise<void> {
    const deadline = new Promise(resolve => setTimeout(resolve, FIRST_LOOK_MS).unref())
    await Promise.race([deadline, this.askTracker().then(async () => {
      await Promise.all(this.liveSources().filter(s => !s.coordinator).map(async s => { await this.poll(s) }))
    })])
  }

  /** Asks the coordinator who else fetches the file, until done. */
  private async track (): Promise<void> {
    const stopped = new Promise(resolve => {
      this.stop.signal.addEventListener('abort', resolve, { once: true })
    })
    while (!this.done) {
      let timer: NodeJS.Timeout | undefined
      const pause = new Promise(resolve => { timer = setTimeout(resolve, TRACKER_REFRESH_MS) })
      await Promise.race([stopped, pause])
      clearTimeout(timer)
      if (!this.done) await this.askTracker()
    }
  }

  private async askTracker (): Promise<void> {
    try {
      this.learn(await askPeers(this.opts.node, this.opts.coordinator, this.address))
    } catch (err) {
      log.debug('tracker did not answer', { ...this.fields, err: messageOf(err) })
    }
  }

  private learn (peers: PeerAddrs[]): void {
    for (const { id, addrs } of peers) {
      let peerId: PeerId
      try { peerId = peerIdFromString(id) } catch { continue }
      const multiaddrs = addrs.flatMap(bytes => { try { return [multiaddr(bytes)] } catch { return [] } })
      if (multiaddrs.length > 0) {
        this.opts.node.peerStore.merge(peerId, { multiaddrs }).catch(() => {})
      }
      this.addPeer(peerId)
    }
  }

  /** Refreshes what peers hold while there is room for more requests. */
  private pollPeers (): void {
    if (this.inFlight() >= SPANS_IN_FLIGHT) return
    const now = Date.now()
    for (const source of this.liveSources()) {
      if (source.coordinator || source.polling || now < source.retryAt) continue
      if (now - source.polledAt >= HAVE_REFRESH_MS) void this.poll(source)
    }
  }

  private async poll (source: Source): Promise<void> {
    source.polling = true
    source.pollStarted = Date.now()
    try {
      const reply = await askHave(this.opts.node, source.id, this.address)
      const size = this.opts.file.held.size
      source.have = new Bitfield(size, reply.have)
      source.fetching = reply.fetching.byteLength === 0 ? undefined : new Bitfield(size, reply.fetching)
      source.failures = 0
    } catch (err) {
      this.failed(source, err)
    } finally {
      source.polledAt = Date.now()
      source.polling = false
      this.wake?.()
    }
  }

  /** Starts requests until the limit, or until nothing can be asked. */
  private fill (): void {
    const file = this.opts.file
    const now = Date.now()
    const waitedEnough = this.waitingSince !== undefined && now - this.waitingSince > WAIT_FOR_PEERS_MS
    for (const s of this.sources.values()) s.usable = !s.dropped && now >= s.retryAt
    const sources = this.liveSources()
    const needed = (i: number): boolean => !file.held.has(i) && !file.inFlight.has(i)
    while (this.inFlight() < SPANS_IN_FLIGHT) {
      const pick = pickSpan(this.order, needed, sources, {
        spanPieces: SPAN_PIECES, othersFetchingCount: !waitedEnough
      })
      if (pick === undefined) break
      if (pick.source.coordinator && this.refreshing(sources, now)) break
      this.request(pick)
    }
    if (this.inFlight() > 0) this.waitingSince = undefined
    else this.waitingSince ??= now
  }

  /** Polls peers whose news is not fresh; true while any is pending. */
  private refreshing (sources: Source[], now: number): boolean {
    const stale = sources.filter(s => !s.coordinator && s.usable && (s.polling
      ? now - s.pollStarted < POLL_WAIT_MS
      : now - s.polledAt > FRESH_MS))
    for (const source of stale) if (!source.polling) void this.poll(source)
    return stale.length > 0
  }

  private request ({ source, first, count }: SpanPick<Source>): void {
    const file = this.opts.file
    const pieces = Array.from({ length: count }, (_, k) => {
      const index = first + k
      const { start, end } = pieceRange(index, file.size, file.pieceBytes)
      file.inFlight.set(index)
      return { index, length: end - start, sha256: file.pieces.hashes[index] }
    })
    source.inFlight++
    log.debug('asking for pieces', { ...this.fields, peer: source.key, first, count })
    // A piece being written when its span breaks stays in flight until
    // written: asking for it again meanwhile would fetch it twice.
    const writing = new Set<number>()
    const onPiece = async (index: number, bytes: Uint8Array): Promise<void> => {
      writing.add(index)
      try {
        await file.writePiece(index, bytes)
      } finally {
        writing.delete(index)
        file.inFlight.clear(index)
      }
      this.lastProgress = Date.now()
      if (source.coordinator) this.bytesFromCoordinator += bytes.byteLength
      else this.bytesFromPeers += bytes.byteLength
      this.opts.onPiece?.(index, source.key)
    }
    fetchSpan(this.opts.node, source.id, this.address, pieces, onPiece, this.stop.signal)
      .then(() => { source.failures = 0 }, (err: unknown) => { this.failed(source, err) })
      .finally(() => {
        source.inFlight--
        for (const { index } of pieces) if (!writing.has(index)) file.inFlight.clear(index)
        this.compactOrder()
        this.wake?.()
      })
  }

  private failed (source: Source, err: unknown): void {
    if (this.stop.signal.aborted) return
    const fields = { ...this.fields, peer: source.key, err: messageOf(err) }
    if (err instanceof CorruptPieceError) {
      if (source.coordinator) {
        log.error('the coordinator sent a corrupt piece', fields)
        if (++this.coordinatorCorrupt >= MAX_COORDINATOR_CORRUPT) {
          this.fatal = new TransferError('the coordinator\'s copy of the file does not match ' +
            `its piece hashes (${messageOf(err)})`)
        }
        return
      }
      log.warn('peer sent a corrupt piece, dropping it', fields)
      this.opts.distrusted.add(source.key)
      source.dropped = true
      return
    }
    source.failures++
    source.retryAt = Date.now() + Math.min(5000, 250 * 2 ** source.failures)
    if (!source.coordinator && source.failures >= MAX_PEER_FAILURES) {
      log.debug('peer failed too often, dropping it', fields)
      source.dropped = true
    } else {
      log.debug('piece request failed', fields)
    }
  }

  /** Drops held pieces from the order now and then, so picks stay cheap. */
  private compactOrder (): void {
    const held = this.opts.file.held
    if (this.order.length - (held.size - held.count) > 256) this.order = this.order.filter(i => !held.has(i))
  }

  private async nextEvent (): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { done() }, HAVE_REFRESH_MS)
      const done = (): void => {
        clearTimeout(timer)
        this.wake = undefined
        resolve()
      }
      this.wake = done
    })
  }
}
