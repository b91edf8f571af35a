/**
 * The coordinator's side of /blendnet/result: a worker pushes one frame
 * per stream. The header is checked against the lease before any byte is
 * read; the bytes are checked (hash, image, resolution) before the frame
 * is written into the output folder.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { MAX_FRAME_BYTES, RESULT_PROTOCOL } from '../common/constants.js'
import { logger } from '../common/log.js'
import { framed, readMessage, writeMessage } from '../net/streams.js'
import { FrameResultCodec, ResultReplyCodec, type FrameResult } from '../net/wire.js'
import type { JobSpec } from '../job/spec.js'
import type { CoordinatorContext } from './context.js'
import { serve } from './serve.js'
import { OutputWriteError } from './output.js'

const log = logger('coordinator')

export async function registerResultHandler (ctx: CoordinatorContext): Promise<void> {
  await serve(ctx, RESULT_PROTOCOL, 'broken-result', handle, (err) => {
    if (!(err instanceof OutputWriteError)) return false
    ctx.onOutputFailed(err.message)
    return true
  })
}

/**
 * The largest file one frame of this job can be, refused before a byte is
 * read: generous per pixel (16-bit RGBA, float EXR, a multilayer EXR with
 * dozens of passes) plus a MiB of headers and metadata.
 */
export function maxFrameBytes (settings: JobSpec['settings']): number {
  if (settings.width === 0) return MAX_FRAME_BYTES
  const perPixel = settings.format === 'OPEN_EXR_MULTILAYER' ? 1024 : settings.format === 'OPEN_EXR' ? 64 : 16
  return Math.min(MAX_FRAME_BYTES, 2 ** 20 + settings.width * settings.height * perPixel)
}

function headerProblem (ctx: CoordinatorContext, result: FrameResult,
  worker: string): { reason: string, stale?: boolean } | undefined {
  if (result.jobId !== ctx.job.jobId) return { reason: `unknown job ${result.jobId}`, stale: true }
  if (result.size === 0 || result.size > maxFrameBytes(ctx.job.settings)) {
    return { reason: `frame size ${result.size} is out of bounds` }
  }
  const check = ctx.state.checkFrame(result.chunkId, result.frame, worker)
  return check.ok ? undefined : check
}

async function handle (ctx: CoordinatorContext, stream: Stream,
  connection: Connection): Promise<void> {
  const worker = connection.remotePeer.toString()
  const lp = framed(stream)
  const result = await readMessage(lp, FrameResultCodec)

  const problem = headerProblem(ctx, result, worker)
  if (problem !== undefined) {
    // A past holder's frame of a chunk finished by another (a speculative
    // copy won, or its lease lapsed) is a race, not an attack.
    const pastHolder = problem.stale === true && ctx.state.chunk(result.chunkId)?.heldBy.has(worker) === true
    if (pastHolder) {
      log.info('stale frame refused', { job: ctx.job.jobId, chunk: result.chunkId, frame: result.frame, peer: worker, reason: problem.reason })
    } else {
      ctx.reject(worker, 'refused-result', problem.reason)
    }
    await writeMessage(lp, ResultReplyCodec, { accepted: false, reason: problem.reason, stale: problem.stale === true })
    await stream.close()
    return
  }

  const written = await ctx.output.receive(lp.unwrap(), result.frame,
    result.size, result.sha256)
  const reply = framed(stream)
  if (!written.ok && written.duplicate === true) {
    log.info('stale frame refused', { job: ctx.job.jobId, chunk: result.chunkId, frame: result.frame, peer: worker, reason: written.reason })
    await writeMessage(reply, ResultReplyCodec, { accepted: false, reason: written.reason, stale: true })
  } else if (!written.ok) {
    ctx.reject(worker, 'bad-frame', `frame ${result.frame}: ${written.reason}`)
    ctx.onFrameRejected(result.frame, worker, written.reason)
    await writeMessage(reply, ResultReplyCodec, { accepted: false, reason: written.reason })
  } else {
    ctx.onFrameDone(result.chunkId, result.frame, worker, written.path)
    await writeMessage(reply, ResultReplyCodec, { accepted: true, reason: '' })
  }
  await stream.close()
}
