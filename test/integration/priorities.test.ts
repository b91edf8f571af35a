/**
 * Two jobs on one swarm: real coordinators and a real worker on
 * 127.0.0.1. Workers take the job of higher priority first, and take
 * turns between jobs of equal priority.
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { RendersFramesOneByOne } from '../helpers/fake-renderers.js'
import { addrOf, HEIGHT, startJob, startWorker, stopAll, WIDTH, type TestJob } from '../helpers/swarm.js'

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
})
