/**
 * Blender's progress from worker to coordinator over real libp2p nodes:
 * the lease holder's report reaches the job's events; anyone else's does
 * not.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type { ChunkRenderRequest, ChunkRenderResult } from '../../src/blender/driver.js'
import { PROGRESS_PROTOCOL } from '../../src/common/constants.js'
import { framed, writeMessage } from '../../src/net/streams.js'
import { ChunkProgressCodec } from '../../src/net/wire.js'
import { RendersSolidPngs } from '../helpers/fake-renderers.js'
import { addrOf, HEIGHT, startJob, startNode, startWorker, stopAll, waitFor, WIDTH } from '../helpers/swarm.js'

/** Prints a frame start and a Cycles progress line, then waits to be let go. */
class ReportsProgressThenWaits extends RendersSolidPngs {
  private release = (): void => {}
  private readonly gate = new Promise<void>(resolve => { this.release = resolve })

  letGo (): void { this.release() }

  override async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    const first = req.frames[0]
    req.onLogLine?.(`blendnet-chunk: {"event": "frame-start", "frame": ${first}, "path": "x"}`)
    req.onLogLine?.(`Fra:${first} Mem:10.02M (Peak 10.39M) | Time:00:00.03 | Mem:0.99M, Peak:0.99M | Scene, ViewLayer | Sample 5/16`)
    await this.gate
    return await super.render(req)
  }
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})

describe('progress reports', { timeout: 60_000 }, () => {
  it('the lease holder\'s Blender progress becomes a chunk-progress event; a stranger\'s does not', async () => {
    const job = await startJob([1, 2], 2)
    cleanups.push(async () => { job.coordinator.cancel('test over'); await job.node.stop() })
    const run = job.coordinator.run()
    const renderer = new ReportsProgressThenWaits(WIDTH, HEIGHT)
    const worker = await startWorker(renderer, [addrOf(job.node)])
    cleanups.push(async () => { await stopAll(worker.worker, worker.node) })

    // A peer holding no lease reports progress on the same chunk.
    const stranger = await startNode([addrOf(job.node)])
    cleanups.push(async () => { await stranger.stop() })
    const stream = await stranger.dialProtocol(job.node.getMultiaddrs()[0], PROGRESS_PROTOCOL)
    await writeMessage(framed(stream), ChunkProgressCodec, {
      jobId: job.spec.jobId, chunkId: 0, frame: 1, sample: 9, samples: 9, status: 'forged'
    })
    await stream.close()

    await waitFor(() => job.events.some(e => e.type === 'chunk-progress' && e.progress.sample === 5), 'the progress event')
    const reports = job.events.filter(e => e.type === 'chunk-progress')
    assert.deepEqual(reports.at(-1), {
      type: 'chunk-progress',
      chunk: 0,
      worker: worker.node.peerId.toString(),
      progress: { frame: 1, sample: 5, samples: 16, status: 'Sample 5/16' }
    })

    renderer.letGo()
    assert.equal((await run).succeeded, true)
    assert.ok(job.events.every(e => e.type !== 'chunk-progress' || e.worker !== stranger.peerId.toString()))
  })
})
