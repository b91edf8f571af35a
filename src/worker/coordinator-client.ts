/**
 * A worker's requests to a job's coordinator: claim a chunk, renew its
 * lease, report a failure (over the claim channel, claim-channels.ts);
 * push a rendered frame, its chunk's log, progress (a stream each).
 */
import { createHash } from 'node:crypto'
import { open, stat } from 'node:fs/promises'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import {
  CHUNK_LOG_PROTOCOL, CLAIM_TIMEOUT_MS, MAX_CHUNK_LOG_BYTES, PROGRESS_PROTOCOL,
  RESULT_PROTOCOL
} from '../common/constants.js'
import type { RenderProgress } from '../blender/render-progress.js'
import { claimChannelsOf } from './claim-channels.js'
import { ProgressReporter } from './progress-reporter.js'
import { hashFile } from '../net/fetch.js'
import type { SwarmNode } from '../net/node.js'
import { signClaim } from '../net/signing.js'
import { framed, readMessage, sendBytes, sendFile, writeMessage } from '../net/streams.js'
import {
  ChunkLogCodec, ChunkProgressCodec, FrameResultCodec, ResultReplyCodec,
  type Capabilities, type ClaimReply, type ClaimRequest, type ResultReply
} from '../net/wire.js'

export class CoordinatorClient {
  constructor (
    private readonly node: SwarmNode,
    private readonly key: PrivateKey,
    readonly coordinator: PeerId,
    readonly jobId: string
  ) {}

  async claim (chunkId: number, capabilities: Capabilities): Promise<ClaimReply> {
    const claim = await signClaim(this.key, { jobId: this.jobId, chunkId, capabilities })
    return this.request({ claim })
  }

  async renew (chunkId: number): Promise<ClaimReply> {
    return this.request({ renewal: { jobId: this.jobId, chunkId } })
  }

  async release (chunkId: number): Promise<ClaimReply> {
    return this.request({ release: { jobId: this.jobId, chunkId } })
  }

  async reportFailure (chunkId: number, reason: string,
    logTail: string[]): Promise<ClaimReply> {
    return this.request({ failure: { jobId: this.jobId, chunkId, reason, logTail } })
  }

  /** Sends one frame; `signal` stops it at once, mid-file included. */
  async pushFrame (chunkId: number, frame: number, path: string,
    signal?: AbortSignal): Promise<ResultReply> {
    const { size } = await stat(path)
    const sha256 = await hashFile(path)
    const stream = await this.node.dialProtocol(this.coordinator, RESULT_PROTOCOL, { signal })
    const stop = (): void => { stream.abort(new Error('frame upload stopped')) }
    signal?.addEventListener('abort', stop, { once: true })
    try {
      const lp = framed(stream)
      await writeMessage(lp, FrameResultCodec, { jobId: this.jobId, chunkId, frame, size, sha256 })
      // The coordinator may refuse on the header alone and stop reading:
      // its reply then explains the failed send.
      const sent = await sendFile(stream, path).then(() => undefined, (err: Error) => err)
      const reply = await readMessage(lp, ResultReplyCodec).catch((err: Error) => {
        throw sent ?? err
      })
      await stream.close().catch(() => {})
      return reply
    } finally {
      signal?.removeEventListener('abort', stop)
    }
  }

  /**
   * Sends the chunk's Blender log (its last MAX_CHUNK_LOG_BYTES) for the
   * coordinator to keep next to the output. Call while holding the lease.
   */
  async pushLog (chunkId: number, path: string, failed: boolean): Promise<ResultReply> {
    const bytes = await readTail(path, MAX_CHUNK_LOG_BYTES)
    const sha256 = createHash('sha256').update(bytes).digest()
    // 5 s, plus a second per 100 kB for a slow link.
    const signal = AbortSignal.timeout(CLAIM_TIMEOUT_MS + Math.ceil(bytes.byteLength / 100))
    const stream = await this.node.dialProtocol(this.coordinator, CHUNK_LOG_PROTOCOL, { signal })
    const lp = framed(stream)
    await writeMessage(lp, ChunkLogCodec, { jobId: this.jobId, chunkId, size: bytes.byteLength, sha256, failed }, signal)
    const sent = await sendBytes(stream, bytes).then(() => undefined, (err: Error) => err)
    const reply = await readMessage(lp, ResultReplyCodec, signal).catch((err: Error) => {
      stream.abort(err)
      throw sent ?? err
    })
    await stream.close().catch(() => {})
    return reply
  }

  /** Reports Blender's progress on the chunk as its log lines come in. */
  progressOf (chunkId: number): ProgressReporter {
    return new ProgressReporter(async (p) => { await this.reportProgress(chunkId, p) },
      { job: this.jobId, chunk: chunkId })
  }

  /** Blender's progress on the chunk, for display: no reply is read. */
  async reportProgress (chunkId: number, progress: RenderProgress): Promise<void> {
    const signal = AbortSignal.timeout(CLAIM_TIMEOUT_MS)
    const stream = await this.node.dialProtocol(this.coordinator, PROGRESS_PROTOCOL, { signal })
    await writeMessage(framed(stream), ChunkProgressCodec, { jobId: this.jobId, chunkId, ...progress }, signal)
    await stream.close({ signal }).catch((err: Error) => { stream.abort(err) })
  }

  private async request (req: ClaimRequest): Promise<ClaimReply> {
    return await claimChannelsOf(this.node).request(this.coordinator, req)
  }
}

/** The last `limit` bytes of a file (all of it when smaller). */
async function readTail (path: string, limit: number): Promise<Uint8Array> {
  const file = await open(path, 'r')
  try {
    const { size } = await file.stat()
    const length = Math.min(size, limit)
    const { buffer, bytesRead } = await file.read({ buffer: Buffer.alloc(length), position: size - length })
    return buffer.subarray(0, bytesRead)
  } finally {
    await file.close()
  }
}
