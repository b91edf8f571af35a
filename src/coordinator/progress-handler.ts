/**
 * The coordinator's side of /blendnet/progress: the worker holding a
 * chunk's lease says what Blender is doing on it (frame, samples). One
 * message per stream, no reply. Progress is for display only: it changes
 * no job state, and a report from anyone but the lease holder is refused.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { PROGRESS_INTERVAL_MS, PROGRESS_PROTOCOL } from '../common/constants.js'
import { framed, readMessage } from '../net/streams.js'
import { ChunkProgressCodec, type ChunkProgress } from '../net/wire.js'
import type { CoordinatorContext } from './context.js'
import { serve } from './serve.js'

/** Reports closer together than this are dropped (honest ones are not). */
const MIN_GAP_MS = PROGRESS_INTERVAL_MS / 2

export async function registerProgressHandler (ctx: CoordinatorContext): Promise<void> {
  const lastReport = new Map<number, number>()
  await serve(ctx, PROGRESS_PROTOCOL, 'broken-progress', async (ctx, stream, connection) => {
    await handle(ctx, stream, connection, lastReport)
  })
}

function problemOf (ctx: CoordinatorContext, report: ChunkProgress,
  worker: string): string | undefined {
  if (report.jobId !== ctx.job.jobId) return `unknown job ${report.jobId}`
  const chunk = ctx.state.chunks[report.chunkId]
  if (chunk === undefined) return `unknown chunk ${report.chunkId}`
  if (!ctx.state.holds(chunk, worker)) {
    return `chunk ${report.chunkId} is not leased to this worker`
  }
  if (!chunk.frames.includes(report.frame)) return `frame ${report.frame} is not in chunk ${report.chunkId}`
  return undefined
}

async function handle (ctx: CoordinatorContext, stream: Stream,
  connection: Connection, lastReport: Map<number, number>): Promise<void> {
  const worker = connection.remotePeer.toString()
  const report = await readMessage(framed(stream), ChunkProgressCodec)
  await stream.close().catch(() => {})
  const problem = problemOf(ctx, report, worker)
  // A lease that just moved on makes late reports stale, not hostile.
  if (problem !== undefined) return
  const now = Date.now()
  if (now - (lastReport.get(report.chunkId) ?? 0) < MIN_GAP_MS) return
  lastReport.set(report.chunkId, now)
  ctx.onChunkProgress(report.chunkId, worker, {
    frame: report.frame, sample: report.sample, samples: report.samples, status: report.status
  })
}
