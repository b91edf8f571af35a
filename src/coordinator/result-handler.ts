/**
 * The coordinator's side of /blendnet/result: a worker pushes one frame
 * per stream. The header is checked against the lease before any byte is
 * read; the bytes are checked (hash, image, resolution) before the frame
 * is written into the output folder.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { MAX_FRAME_BYTES, RESULT_PROTOCOL } from '../common/constants.js'
import { messageOf } from '../common/errors.js'
import { framed, readMessage, writeMessage } from '../net/streams.js'
import { FrameResultCodec, ResultReplyCodec, type FrameResult } from '../net/wire.js'
import type { CoordinatorContext } from './context.js'
import { OutputWriteError } from './output.js'

export async function registerResultHandler (ctx: CoordinatorContext): Promise<void> {
  await ctx.node.handle(RESULT_PROTOCOL, (stream, connection) => {
    handle(ctx, stream, connection).catch((err) => {
      stream.abort(err as Error)
      if (err instanceof OutputWriteError) ctx.onOutputFailed(err.message)
      else ctx.reject(connection.remotePeer.toString(), 'broken-result', messageOf(err))
    })
  })
}

function headerProblem (ctx: CoordinatorContext, result: FrameResult,
  worker: string): string | undefined {
  if (result.jobId !== ctx.job.jobId) return `unknown job ${result.jobId}`
  if (result.size === 0 || result.size > MAX_FRAME_BYTES) {
    return `frame size ${result.size} is out of bounds`
  }
  const check = ctx.state.checkFrame(result.chunkId, result.frame, worker)
  return check.ok ? undefined : check.reason
}

async function handle (ctx: CoordinatorContext, stream: Stream,
  connection: Connection): Promise<void> {
  const worker = connection.remotePeer.toString()
  const lp = framed(stream)
  const result = await readMessage(lp, FrameResultCodec)

  const problem = headerProblem(ctx, result, worker)
  if (problem !== undefined) {
    ctx.reject(worker, 'refused-result', problem)
    await writeMessage(lp, ResultReplyCodec, { accepted: false, reason: problem })
    await stream.close()
    return
  }

  const written = await ctx.output.receive(lp.unwrap(), result.frame,
    result.size, result.sha256)
  const reply = framed(stream)
  if (!written.ok) {
    ctx.reject(worker, 'bad-frame', `frame ${result.frame}: ${written.reason}`)
    ctx.onFrameRejected(result.frame, worker, written.reason)
    await writeMessage(reply, ResultReplyCodec, { accepted: false, reason: written.reason })
  } else {
    ctx.onFrameDone(result.chunkId, result.frame, worker, written.path)
    await writeMessage(reply, ResultReplyCodec, { accepted: true, reason: '' })
  }
  await stream.close()
}
