/**
 * The serving side of the pieces protocol, run by the coordinator (which
 * holds every file of its job) and by every worker (for the pieces it
 * holds verified). A request names the job (coordinator and job id) and
 * the file by hash: a peer answers only for jobs it knows, reads only
 * files its owner resolves from that hash, never a path from the wire,
 * and counts every stream against the asker's rate limit.
 */
import { open } from 'node:fs/promises'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { PIECES_PROTOCOL } from '../common/constants.js'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import type { SwarmNode } from './node.js'
import { pieceRange, type Bitfield } from './pieces.js'
import {
  PieceReplyCodec, PieceRequestCodec, type PeerAddrs, type PieceReply, type PieceRequest
} from './piece-wire.js'
import { framed, readMessage, sendFile, writeMessage } from './streams.js'

const log = logger('pieces')

/** A file this peer can serve pieces of. */
export interface ServedFile {
  size: number
  pieceBytes: number
  /** The pieces held and verified. */
  have: () => Bitfield
  /** The pieces being fetched now, if any. */
  fetching: () => Bitfield | undefined
  /** Where the verified pieces can be read, resolved from the hash. */
  path: () => string
}

export interface PieceServerOptions {
  node: SwarmNode
  /** False: the peer asks too often (the rate limit); refused unread. */
  admit: (peer: string) => boolean
  /** A file of a job this peer knows; undefined: refused. */
  lookup: (request: PieceRequest) => ServedFile | undefined
  /** A peer asked about a file it lacks: it fetches the file too. */
  onAsked?: (peer: PeerId, request: PieceRequest) => void
  /** Other peers fetching the file: only the coordinator answers this. */
  peersOf?: (asker: PeerId, request: PieceRequest) => Promise<PeerAddrs[]>
}

const NO = { have: new Uint8Array(), fetching: new Uint8Array(), peers: [] }

export class PieceServer {
  /** Piece bytes sent since start, to every peer. */
  bytesServed = 0

  constructor (private readonly opts: PieceServerOptions) {}

  async start (): Promise<void> {
    await this.opts.node.handle(PIECES_PROTOCOL, (stream, connection) => {
      const peer = connection.remotePeer.toString()
      if (!this.opts.admit(peer)) {
        stream.abort(new Error('too many requests'))
        return
      }
      this.serve(stream, connection).catch((err: unknown) => {
        log.debug('piece request failed', { peer, err: messageOf(err) })
        stream.abort(err as Error)
      })
    })
  }

  async stop (): Promise<void> {
    await this.opts.node.unhandle(PIECES_PROTOCOL)
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const lp = framed(stream)
    const request = await readMessage(lp, PieceRequestCodec)
    const file = this.opts.lookup(request)
    const refuse = async (reason: string): Promise<void> => {
      await writeMessage(lp, PieceReplyCodec, { ok: false, reason, ...NO })
      await stream.close()
    }
    if (file === undefined) { await refuse('unknown job or file'); return }
    this.opts.onAsked?.(connection.remotePeer, request)

    if (request.kind === 'have') {
      const fetching = file.fetching()?.bytes ?? new Uint8Array()
      const reply: PieceReply = { ok: true, reason: '', have: file.have().bytes, fetching, peers: [] }
      await writeMessage(lp, PieceReplyCodec, reply)
    } else if (request.kind === 'peers') {
      if (this.opts.peersOf === undefined) { await refuse('not this job\'s coordinator'); return }
      const peers = await this.opts.peersOf(connection.remotePeer, request)
      await writeMessage(lp, PieceReplyCodec, { ok: true, reason: '', ...NO, peers })
    } else {
      const missing = this.missingPiece(file, request)
      if (missing !== undefined) { await refuse(missing); return }
      log.debug('sending pieces', {
        job: request.jobId, peer: connection.remotePeer.toString(), first: request.first, count: request.count
      })
      await this.sendSpan(lp, file, request)
    }
    await stream.close()
  }

  /** Why the span cannot be served, or undefined when every piece is here. */
  private missingPiece (file: ServedFile, request: PieceRequest): string | undefined {
    const have = file.have()
    if (request.first + request.count > have.size) return 'no such pieces'
    for (let i = request.first; i < request.first + request.count; i++) {
      if (!have.has(i)) return `piece ${i} not held`
    }
    return undefined
  }

  private async sendSpan (lp: ReturnType<typeof framed>, file: ServedFile,
    request: PieceRequest): Promise<void> {
    const { start } = pieceRange(request.first, file.size, file.pieceBytes)
    const { end } = pieceRange(request.first + request.count - 1, file.size, file.pieceBytes)
    // Opened before saying yes: a file being fetched is renamed into
    // place when complete, and the handle still reads it then.
    const handle = await open(file.path(), 'r').catch(async () => await open(file.path(), 'r'))
    try {
      await writeMessage(lp, PieceReplyCodec, { ok: true, reason: '', ...NO })
      await sendFile(lp.unwrap(), handle, start, end)
    } finally {
      await handle.close().catch(() => {})
    }
    this.bytesServed += end - start
  }
}
