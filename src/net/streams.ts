/**
 * Stream plumbing shared by the protocols: one framed request and reply
 * per stream, and raw file bytes with real backpressure in both
 * directions. libp2p 3 streams need care here (see docs/protocol.md):
 * `onDrain()` resolves early, reads have no backpressure unless paused,
 * and no wait has a deadline unless we give it one.
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Stream, StreamMessageEvent } from '@libp2p/interface'
import {
  MAX_CONTROL_MESSAGE_BYTES, STREAM_IDLE_TIMEOUT_MS, TRANSFER_CHUNK_BYTES
} from '../common/constants.js'
import type { Codec } from './wire.js'

export class TransferError extends Error {
  override name = 'TransferError'
}

/** Our own disk failed while receiving: not the peer's fault. */
export class LocalWriteError extends Error {
  override name = 'LocalWriteError'
}

export function framed (stream: Stream): LengthPrefixedStream<Stream> {
  return lpStream(stream, { maxDataLength: MAX_CONTROL_MESSAGE_BYTES })
}

function deadline (): AbortSignal {
  return AbortSignal.timeout(STREAM_IDLE_TIMEOUT_MS)
}

export async function readMessage<T> (lp: LengthPrefixedStream<Stream>,
  codec: Codec<T>, signal = deadline()): Promise<T> {
  return codec.decode(await lp.read({ signal }))
}

export async function writeMessage<T> (lp: LengthPrefixedStream<Stream>,
  codec: Codec<T>, value: T, signal = deadline()): Promise<void> {
  await lp.write(codec.encode(value), { signal })
}

/** Resolves on 'drain'; `stream.onDrain()` is unreliable in utils 7.4. */
function drained (stream: Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { done(new TransferError('peer stopped reading')) },
      STREAM_IDLE_TIMEOUT_MS)
    const onDrain = (): void => { done() }
    const onClose = (): void => { done(new TransferError('stream closed while sending')) }
    function done (err?: Error): void {
      clearTimeout(timer)
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  })
}

/**
 * Sends a file's bytes from `offset` (up to `end`, exclusive, when given),
 * never queueing more than one block.
 */
export async function sendFile (stream: Stream, path: string | FileHandle,
  offset = 0, end?: number): Promise<void> {
  if (end !== undefined && end <= offset) return
  const range = { start: offset, end: end === undefined ? undefined : end - 1, highWaterMark: TRANSFER_CHUNK_BYTES }
  // An open handle keeps reading a file that is renamed meanwhile.
  const input = typeof path === 'string' ? createReadStream(path, range) : path.createReadStream(range)
  for await (const block of input) {
    if (!stream.send(block as Buffer)) await drained(stream)
  }
}

/** Sends bytes held in memory, a block at a time. */
export async function sendBytes (stream: Stream, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.byteLength; at += TRANSFER_CHUNK_BYTES) {
    const block = bytes.subarray(at, at + TRANSFER_CHUNK_BYTES)
    if (!stream.send(block)) await drained(stream)
  }
}

export interface Received { bytes: number, sha256: Uint8Array }

/** yamux's largest stream window (16 MiB), and room for a frame more. */
const PAUSED_READ_BUFFER_BYTES = 17 * 1024 * 1024

/**
 * Writes exactly `size` bytes from the stream into `path`, hashing them on
 * the way. The stream is paused while the disk catches up, so memory stays
 * bounded whatever the file size. Must be called synchronously after the
 * stream was unwrapped from a framed reader, or read-ahead bytes are lost.
 */
export function receiveFile (stream: Stream, path: string,
  size: number): Promise<Received> {
  // Pausing stops yamux's window updates, but the sender may still send
  // what its window allows (up to 16 MiB once the window has grown); the
  // default 4 MiB read buffer would abort the stream under a slow disk.
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, PAUSED_READ_BUFFER_BYTES)
  return new Promise((resolve, reject) => {
    const out = createWriteStream(path)
    const hash = createHash('sha256')
    let received = 0
    let settled = false
    let idle = setTimeout(onIdle, STREAM_IDLE_TIMEOUT_MS)

    function onIdle (): void { finish(new TransferError('transfer stalled')) }
    function finish (err?: Error): void {
      if (settled) return
      settled = true
      clearTimeout(idle)
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      stream.removeEventListener('end', onClose)
      // A write that fails late (a full disk) surfaces only here, after
      // every byte arrived: the file is then not what was received.
      out.end((endErr?: Error | null) => {
        const writeErr = writeError ?? endErr ?? undefined
        if (err !== undefined) reject(err)
        else if (writeErr !== undefined) reject(new LocalWriteError(`writing ${path}: ${writeErr.message}`, { cause: writeErr }))
        else resolve({ bytes: received, sha256: hash.digest() })
      })
    }
    function onMessage (evt: StreamMessageEvent): void {
      const block = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      clearTimeout(idle)
      idle = setTimeout(onIdle, STREAM_IDLE_TIMEOUT_MS)
      received += block.byteLength
      if (received > size) { finish(new TransferError(`peer sent more than ${size} bytes`)); return }
      hash.update(block)
      if (!out.write(block)) {
        stream.pause()
        out.once('drain', () => { stream.resume() })
      }
      if (received === size) finish()
    }
    function onClose (): void {
      finish(new TransferError(`stream ended after ${received} of ${size} bytes`))
    }
    let writeError: Error | undefined
    out.on('error', (err) => {
      writeError ??= err
      finish(new LocalWriteError(`writing ${path}: ${err.message}`, { cause: err }))
    })
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onClose)
    stream.addEventListener('end', onClose)
    if (size === 0) finish()
  })
}
