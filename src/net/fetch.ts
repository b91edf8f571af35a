/**
 * The fetch protocol: a peer asks for a file by SHA-256 and gets its bytes
 * over one stream, with backpressure both ways. The receiver writes to a
 * temp file, checks size and hash, then renames it into place: a file in
 * the cache is always whole and verified.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { FETCH_PROTOCOL } from '../common/constants.js'
import { logger } from '../common/log.js'
import type { SwarmNode } from './node.js'
import {
  framed, readMessage, receiveFile, sendBytes, sendFile, TransferError, writeMessage
} from './streams.js'
import { FetchReplyCodec, FetchRequestCodec, type BlobRef } from './wire.js'

const log = logger('fetch')

export function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

/** SHA-256 of a file, streamed: scenes can be several GB. */
export async function hashFile (path: string): Promise<Uint8Array> {
  const hash = createHash('sha256')
  for await (const block of createReadStream(path)) hash.update(block as Buffer)
  return hash.digest()
}

/** Serves the files this peer holds to whoever asks by hash. */
export class BlobServer {
  private readonly files = new Map<string, string>()
  private readonly inMemory = new Map<string, Uint8Array>()

  /** `admit` may refuse a peer's stream before anything is read. */
  constructor (private readonly node: SwarmNode,
    private readonly admit: (peer: string) => boolean = () => true) {}

  async start (): Promise<void> {
    await this.node.handle(FETCH_PROTOCOL, (stream, connection) => {
      if (!this.admit(connection.remotePeer.toString())) {
        stream.abort(new Error('too many requests'))
        return
      }
      this.serve(stream, connection).catch((err: Error) => {
        log.warn('fetch failed', { peer: connection.remotePeer.toString(), err: err.message })
        stream.abort(err)
      })
    })
  }

  async stop (): Promise<void> {
    await this.node.unhandle(FETCH_PROTOCOL)
  }

  add (sha256: Uint8Array, path: string): void {
    this.files.set(hex(sha256), path)
  }

  /** Serves bytes held in memory, such as a job's manifest. */
  addBytes (sha256: Uint8Array, bytes: Uint8Array): void {
    this.inMemory.set(hex(sha256), bytes)
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const lp = framed(stream)
    const req = await readMessage(lp, FetchRequestCodec)
    const bytes = this.inMemory.get(hex(req.sha256))
    if (bytes !== undefined && req.offset <= bytes.byteLength) {
      await writeMessage(lp, FetchReplyCodec, { ok: true, reason: '', size: bytes.byteLength })
      await sendBytes(lp.unwrap(), bytes.subarray(req.offset))
      await stream.close()
      return
    }
    const path = this.files.get(hex(req.sha256))
    const size = path === undefined ? 0 : (await stat(path)).size
    if (path === undefined || req.offset > size) {
      await writeMessage(lp, FetchReplyCodec, { ok: false, reason: 'no such file', size: 0 })
      await stream.close()
      return
    }
    log.info('sending file', {
      peer: connection.remotePeer.toString(), hash: hex(req.sha256).slice(0, 16), size, offset: req.offset
    })
    await writeMessage(lp, FetchReplyCodec, { ok: true, reason: '', size })
    await sendFile(lp.unwrap(), path, req.offset)
    await stream.close()
  }
}

/** Fetches `ref` from `peer` into `dest`, verified; resumes nothing yet. */
export async function fetchBlob (node: SwarmNode, peer: PeerId, ref: BlobRef,
  dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true })
  const temp = `${dest}.part`
  const stream = await node.dialProtocol(peer, FETCH_PROTOCOL)
  try {
    const lp = framed(stream)
    await writeMessage(lp, FetchRequestCodec, { sha256: ref.sha256, offset: 0 })
    const reply = await readMessage(lp, FetchReplyCodec)
    if (!reply.ok) throw new TransferError(`peer refused: ${reply.reason}`)
    if (reply.size !== ref.size) {
      throw new TransferError(`peer offers ${reply.size} bytes, the job says ${ref.size}`)
    }
    const got = await receiveFile(lp.unwrap(), temp, reply.size)
    if (hex(got.sha256) !== hex(ref.sha256)) {
      throw new TransferError('the file received does not match its SHA-256')
    }
    await rename(temp, dest)
  } catch (err) {
    await rm(temp, { force: true })
    stream.abort(err as Error)
    throw err
  }
  await stream.close().catch(() => {})
}
