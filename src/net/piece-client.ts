/**
 * The asking side of the pieces protocol: which pieces a peer holds, who
 * else fetches a file (the coordinator's tracker), and a span of pieces,
 * each checked against its hash as it arrives. Pieces that arrived whole
 * and verified are handed over even when the stream breaks later: that
 * is what lets a fetch resume instead of starting over.
 */
import { createHash } from 'node:crypto'
import type { PeerId, Stream, StreamMessageEvent } from '@libp2p/interface'
import { PIECE_IDLE_MS, PIECES_PROTOCOL, STREAM_IDLE_TIMEOUT_MS } from '../common/constants.js'
import type { SwarmNode } from './node.js'
import {
  PieceReplyCodec, PieceRequestCodec, type PieceReply, type PieceRequest
} from './piece-wire.js'
import { framed, readMessage, TransferError, writeMessage } from './streams.js'

/** A piece whose bytes do not match the manifest's hash: the sender lied. */
export class CorruptPieceError extends TransferError {
  override name = 'CorruptPieceError'
}

/** The peer answered, but refused. */
export class PieceRefusedError extends TransferError {
  override name = 'PieceRefusedError'
}

export type FileAddress = Pick<PieceRequest, 'coordinator' | 'jobId' | 'sha256'>

/** One request and its reply; the stream is returned open for a span. */
async function ask (node: SwarmNode, peer: PeerId,
  request: PieceRequest): Promise<{ reply: PieceReply, stream: Stream, lp: ReturnType<typeof framed> }> {
  const signal = AbortSignal.timeout(STREAM_IDLE_TIMEOUT_MS)
  const stream = await node.dialProtocol(peer, PIECES_PROTOCOL, { signal })
  try {
    const lp = framed(stream)
    await writeMessage(lp, PieceRequestCodec, request)
    const reply = await readMessage(lp, PieceReplyCodec)
    if (!reply.ok) throw new PieceRefusedError(`peer refused: ${reply.reason}`)
    return { reply, stream, lp }
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

export async function askHave (node: SwarmNode, peer: PeerId,
  file: FileAddress): Promise<PieceReply> {
  const { reply, stream } = await ask(node, peer, { ...file, kind: 'have', first: 0, count: 0 })
  await stream.close().catch(() => {})
  return reply
}

export async function askPeers (node: SwarmNode, coordinator: PeerId,
  file: FileAddress): Promise<PieceReply['peers']> {
  const { reply, stream } = await ask(node, coordinator, { ...file, kind: 'peers', first: 0, count: 0 })
  await stream.close().catch(() => {})
  return reply.peers
}

export interface ExpectedPiece { index: number, length: number, sha256: Uint8Array }

/**
 * Fetches consecutive pieces; `onPiece` gets each verified piece (and is
 * awaited: it writes it to disk). Throws CorruptPieceError on a piece
 * that does not match, TransferError when the stream breaks or stalls.
 */
export async function fetchSpan (node: SwarmNode, peer: PeerId, file: FileAddress,
  pieces: ExpectedPiece[], onPiece: (index: number, bytes: Uint8Array) => Promise<void>,
  signal?: AbortSignal): Promise<void> {
  const request = { ...file, kind: 'span' as const, first: pieces[0].index, count: pieces.length }
  const { stream, lp } = await ask(node, peer, request)
  const stop = (): void => { stream.abort(new TransferError('fetch stopped')) }
  signal?.addEventListener('abort', stop, { once: true })
  try {
    await receivePieces(lp.unwrap(), pieces, onPiece)
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    signal?.removeEventListener('abort', stop)
  }
  await stream.close().catch(() => {})
}

/**
 * Reads the pieces' bytes off the stream, one piece buffer at a time.
 * Must be called synchronously after the stream was unwrapped. Bytes
 * that arrive while a piece is checked and written wait in a queue: a
 * span is a few MiB (the fetcher asks for at most SPAN_PIECES pieces),
 * so the queue is bounded by the request itself. Pausing the stream
 * instead lost its window updates now and then (js-libp2p 3.3, yamux 8)
 * and stalled the transfer.
 */
function receivePieces (stream: Stream, pieces: ExpectedPiece[],
  onPiece: (index: number, bytes: Uint8Array) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const queue: Uint8Array[] = []
    let queued = 0
    let current = 0
    let buffer = Buffer.allocUnsafe(pieces[0].length)
    let filled = 0
    let working = false
    let ended = false
    let settled = false
    let idle = setTimeout(onIdle, PIECE_IDLE_MS)

    function onIdle (): void { finish(new TransferError('piece transfer stalled')) }
    function finish (err?: Error): void {
      if (settled) return
      settled = true
      clearTimeout(idle)
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onEnd)
      stream.removeEventListener('end', onEnd)
      if (err === undefined) resolve()
      else reject(err)
    }
    function onMessage (evt: StreamMessageEvent): void {
      const data = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      clearTimeout(idle)
      idle = setTimeout(onIdle, PIECE_IDLE_MS)
      queue.push(data)
      queued += data.byteLength
      void work()
    }
    function onEnd (): void {
      ended = true
      void work()
    }
    async function work (): Promise<void> {
      if (working || settled) return
      working = true
      try {
        await consume()
      } catch (err) {
        finish(err as Error)
      } finally {
        working = false
      }
      if (settled) return
      if (ended && queue.length === 0) {
        finish(new TransferError(`stream ended after ${current} of ${pieces.length} pieces`))
      }
    }
    async function consume (): Promise<void> {
      while (queue.length > 0 && !settled) {
        const block = queue[0]
        const take = Math.min(buffer.byteLength - filled, block.byteLength)
        buffer.set(block.subarray(0, take), filled)
        filled += take
        queued -= take
        if (take === block.byteLength) queue.shift()
        else queue[0] = block.subarray(take)
        if (filled < buffer.byteLength) continue

        const piece = pieces[current]
        const actual = createHash('sha256').update(buffer).digest()
        if (!actual.equals(piece.sha256)) {
          throw new CorruptPieceError(`piece ${piece.index} does not match its SHA-256`)
        }
        await onPiece(piece.index, buffer)
        current++
        if (current === pieces.length) {
          if (queued > 0) throw new TransferError('peer sent more than the pieces asked for')
          finish()
          return
        }
        buffer = Buffer.allocUnsafe(pieces[current].length)
        filled = 0
      }
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onEnd)
    stream.addEventListener('end', onEnd)
    // The peer may have sent, or broken off, before we listened.
    if (stream.status === 'reset' || stream.status === 'aborted') onEnd()
  })
}
