/**
 * Two jobs on one swarm: real coordinators and a real worker on
 * 127.0.0.1. Workers take the job of higher priority first, take turns
 * between jobs of equal priority, fetch a job's files while they render
 * another's chunk, and keep rendering a job when another job of the same
 * scene file ends.
 */
import assert from 'node:assert/strict'
import { access, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, it } from 'node:test'
import { hex } from '../../src/net/fetch.js'
import type { ChunkRenderRequest, ChunkRenderResult } from '../../src/blender/driver.js'
import { RendersFramesOneByOne } from '../helpers/fake-renderers.js'
import { addrOf, HEIGHT, startJob, startWorker, stopAll, tempDir, waitFor, WIDTH, type TestJob } from '../helpers/swarm.js'

/**
 * Renders as RendersFramesOneByOne, and like a warm Blender session: a
 * render stops when its scene is closed (the worker closes a job's scene
 * when the job ends) or its scene file is gone.
 */
class StopsWhenItsSceneCloses extends RendersFramesOneByOne {
  private readonly closed = new Set<string>()
  override async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    this.closed.delete(req.blendPath)
    const onFrameSaved = req.onFrameSaved
    return await super.render({
      ...req,
      onFrameSaved: (frame, path) => {
        if (this.closed.has(req.blendPath)) throw new Error('the render was cancelled')
        onFrameSaved?.(frame, path)
      }
    }).then(async (result) => {
      await access(req.blendPath)
      return result
    })
  }

  async close (blendPath: string): Promise<void> {
    this.closed.add(blendPath)
  }
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})

/** Which job each frame came from, in the order they were written. */
let written: string[] = []

async function job (name: string, priority: number): Promise<TestJob> {
  const j = await startJob([1, 2, 3, 4, 5, 6], 1, {
    priority,
    onEvent: (e) => { if (e.type === 'frame-done') written.push(name) }
  })
  cleanups.push(async () => {
    j.coordinator.cancel('test over')
    await j.node.stop()
  })
  return j
}

/** One worker that knows both jobs: it joins through both coordinators. */
async function oneWorkerFor (a: TestJob, b: TestJob): Promise<void> {
  const renderer = new RendersFramesOneByOne(WIDTH, HEIGHT, 40)
  const w = await startWorker(renderer, [addrOf(a.node), addrOf(b.node)])
  cleanups.push(async () => { await stopAll(w.worker, w.node) })
}

describe('several jobs on one swarm', { timeout: 120_000 }, () => {
  it('the job of higher priority is rendered first, even when announced second', async () => {
    written = []
    const low = await job('low', 0)
    const high = await job('high', 10)
    const runs = [low.coordinator.run(), high.coordinator.run()]
    await oneWorkerFor(low, high)
    const [lowOutcome, highOutcome] = await Promise.all(runs)
    assert.equal(lowOutcome.succeeded && highOutcome.succeeded, true)

    const seq = written
    assert.equal(seq.length, 12)
    // The worker may take one frame of the low job before it hears of the
    // other; after that, all of the high job comes before the rest.
    const lastHigh = seq.lastIndexOf('high')
    assert.ok(lastHigh <= 6, `high priority done by the 7th frame: ${seq.join(' ')}`)
  })

  it('jobs of equal priority take turns', async () => {
    written = []
    const a = await job('a', 3)
    const b = await job('b', 3)
    const runs = [a.coordinator.run(), b.coordinator.run()]
    await oneWorkerFor(a, b)
    await Promise.all(runs)

    const seq = written
    assert.equal(seq.length, 12)
    // Once both are known, no job gets two chunks in a row while the
    // other has frames left: at most one repeat, at the very start.
    const repeats = seq.slice(1).filter((name, i) => name === seq[i]).length
    assert.ok(repeats <= 1, `turns: ${seq.join(' ')}`)
  })

  it('fetches the next job\'s files while it renders a chunk of another', async () => {
    // One chunk of six frames: 2.4 s during which the worker is busy.
    const first = await startJob([1, 2, 3, 4, 5, 6], 6)
    cleanups.push(async () => { first.coordinator.cancel('test over'); await first.node.stop() })
    // 1 MiB: one piece, large enough that fetching it is real work.
    const next = await startJob([1, 2], 2, { sceneBytes: 1 << 20 })
    cleanups.push(async () => { next.coordinator.cancel('test over'); await next.node.stop() })
    const firstRun = first.coordinator.run()
    const renderer = new RendersFramesOneByOne(WIDTH, HEIGHT, 400)
    const w = await startWorker(renderer, [addrOf(first.node), addrOf(next.node)])
    cleanups.push(async () => { await stopAll(w.worker, w.node) })
    await waitFor(() => first.events.some(e => e.type === 'chunk-granted'), 'a chunk of the first job')

    const nextRun = next.coordinator.run()
    const blob = w.workDir.blobPath(hex(next.spec.blend.sha256))
    let present = false
    await waitFor(() => {
      void access(blob).then(() => { present = true }, () => {})
      return present
    }, 'the next job\'s scene in the worker\'s cache', 15_000)
    // The worker is still rendering the first job's only chunk: the
    // fetch was made ahead.
    const firstDone = first.events.filter(e => e.type === 'frame-done').length
    assert.ok(firstDone < 6, `fetched before the first job ended (${firstDone} of 6 frames done)`)
    assert.equal(next.events.some(e => e.type === 'chunk-granted'), false, 'fetched before any chunk of it was granted')

    const [a, b] = await Promise.all([firstRun, nextRun])
    assert.equal(a.succeeded && b.succeeded, true)
  })

  it('a job ending closes nothing another job of the same scene file renders from', async () => {
    const scene = join(await tempDir(), 'scene.blend')
    await writeFile(scene, 'the same scene for both jobs')
    const short = await startJob([1, 2], 1, { scene })
    const long = await startJob([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 3, { scene })
    for (const j of [short, long]) cleanups.push(async () => { j.coordinator.cancel('test over'); await j.node.stop() })
    assert.deepEqual(short.spec.manifest.sha256, long.spec.manifest.sha256)
    const runs = [short.coordinator.run(), long.coordinator.run()]
    // Two workers: one is rendering a chunk of the long job when the
    // other delivers the short job's last frame.
    for (let i = 0; i < 2; i++) {
      const w = await startWorker(new StopsWhenItsSceneCloses(WIDTH, HEIGHT, 150), [addrOf(short.node), addrOf(long.node)])
      cleanups.push(async () => { await stopAll(w.worker, w.node) })
    }
    const [a, b] = await Promise.all(runs)
    assert.equal(a.succeeded && b.succeeded, true)
    const failed = long.events.filter(e => e.type === 'chunk-failed')
    assert.deepEqual(failed, [], 'chunks of the long job failed when the short one ended')
  })
})
