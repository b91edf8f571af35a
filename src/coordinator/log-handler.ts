/**
 * The coordinator's side of /blendnet/chunk-log: the worker holding a
 * chunk's lease sends Blender's log of that chunk (beside its last frame, or
 * before reporting a failure), and it is kept next to the output:
 *
 *   <output>/.blendnet/logs/<job>/chunk-0003_frames-13-16_failed_<peer>_<time>.log
 *
 * so a failed frame's reason can be read in full after the job, whoever
 * rendered it. Logs are records, not results: one that cannot be written
 * is refused with a warning and the job goes on.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Connection, Stream } from '@libp2p/interface'
import { CHUNK_LOG_PROTOCOL, MAX_CHUNK_LOG_BYTES } from '../common/constants.js'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import { framed, readMessage, receiveFile, writeMessage } from '../net/streams.js'
import { ChunkLogCodec, ResultReplyCodec, type ChunkLog } from '../net/wire.js'
import type { CoordinatorContext } from './context.js'
import { serve } from './serve.js'

const log = logger('coordinator')

/** Where a job's chunk logs go, inside the output folder. */
export function chunkLogDir (outputDir: string, jobId: string): string {
  return join(outputDir, '.blendnet', 'logs', jobId)
}

export async function registerChunkLogHandler (ctx: CoordinatorContext): Promise<void> {
  await serve(ctx, CHUNK_LOG_PROTOCOL, 'broken-chunk-log', handle)
}

function headerProblem (ctx: CoordinatorContext, header: ChunkLog,
  worker: string): string | undefined {
  if (header.jobId !== ctx.job.jobId) return `unknown job ${header.jobId}`
  if (header.size > MAX_CHUNK_LOG_BYTES) return `log of ${header.size} bytes is over ${MAX_CHUNK_LOG_BYTES}`
  const chunk = ctx.state.chunks[header.chunkId]
  if (chunk === undefined) return `unknown chunk ${header.chunkId}`
  // A worker that lost the chunk to a speculative copy still sends the
  // log of the frames it rendered.
  if (!ctx.state.holds(chunk, worker) && !chunk.heldBy.has(worker)) {
    return `chunk ${header.chunkId} is not leased to this worker`
  }
  return undefined
}

async function handle (ctx: CoordinatorContext, stream: Stream,
  connection: Connection): Promise<void> {
  const worker = connection.remotePeer.toString()
  const lp = framed(stream)
  const header = await readMessage(lp, ChunkLogCodec)
  // One log per worker and chunk: a lease holder cannot fill the disk.
  const problem = headerProblem(ctx, header, worker) ??
    (ctx.logs.take(header.chunkId, worker) ? undefined : `a log of chunk ${header.chunkId} from this worker is already kept`)
  if (problem !== undefined) {
    ctx.reject(worker, 'refused-chunk-log', problem)
    await writeMessage(lp, ResultReplyCodec, { accepted: false, reason: problem })
    await stream.close()
    return
  }

  try {
    await keep(ctx, stream, lp, header, worker)
  } finally {
    ctx.logs.settled()
  }
}

async function keep (ctx: CoordinatorContext, stream: Stream, lp: ReturnType<typeof framed>,
  header: ChunkLog, worker: string): Promise<void> {
  const dir = chunkLogDir(ctx.output.dir, ctx.job.jobId)
  const final = join(dir, logName(ctx, header, worker))
  const temp = join(dir, `.${randomBytes(4).toString('hex')}.part`)
  const reason = await mkdir(dir, { recursive: true })
    .then(async () => await receiveFile(lp.unwrap(), temp, header.size))
    .then(async (got) => {
      if (Buffer.compare(got.sha256, header.sha256) !== 0) return 'SHA-256 does not match the bytes received'
      await rename(temp, final)
      return undefined
    })
    .catch((err: unknown) => `cannot keep the log: ${messageOf(err)}`)
  await rm(temp, { force: true })
  const reply = framed(stream)
  if (reason !== undefined) {
    log.warn('chunk log not kept', { job: ctx.job.jobId, chunk: header.chunkId, peer: worker, reason })
    await writeMessage(reply, ResultReplyCodec, { accepted: false, reason })
  } else {
    log.debug('chunk log kept', { job: ctx.job.jobId, chunk: header.chunkId, peer: worker, path: final })
    await writeMessage(reply, ResultReplyCodec, { accepted: true, reason: '' })
  }
  await stream.close()
}

/** Sorted by chunk, then by time; the peer and outcome greppable. */
function logName (ctx: CoordinatorContext, header: ChunkLog, worker: string): string {
  const frames = ctx.state.chunks[header.chunkId].frames
  const range = frames.length === 1 ? `${frames[0]}` : `${frames[0]}-${frames[frames.length - 1]}`
  const time = new Date().toISOString().replace(/[:.]/g, '-')
  return `chunk-${String(header.chunkId).padStart(4, '0')}_frames-${range}_` +
    `${header.failed ? 'failed' : 'ok'}_${worker}_${time}.log`
}
