import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { JobView } from '../../src/progress/job-view.js'

const A = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const B = '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'

function view (alreadyDone: number[] = []): JobView {
  return new JobView({ jobId: 'j1', scene: 'Scene', format: 'PNG', frames: [1, 2, 3, 4, 5, 6], alreadyDone: new Set(alreadyDone) }, 0)
}

const progress = (frame: number, sample: number) => ({ frame, sample, samples: 16, status: `Sample ${sample}/16` })

describe('JobView', () => {
  it('a granted chunk is queued, the frame Blender is on is rendering, a delivered one done', () => {
    const v = view()
    v.apply({ type: 'worker-joined', worker: A, summary: '', unmet: [], blender: '4.2.0' }, 0)
    assert.deepEqual(v.apply({ type: 'chunk-granted', chunk: 0, worker: A, frames: [1, 2] }, 1000), [1, 2])
    assert.equal(v.grid(), 'qqwwww')
    assert.deepEqual(v.apply({ type: 'chunk-progress', chunk: 0, worker: A, progress: progress(1, 3) }, 1500), [1])
    assert.equal(v.grid(), 'rqwwww')
    v.apply({ type: 'frame-done', frame: 1, worker: A, path: '/o/frame_0001.png', done: 1, total: 6 }, 3000)
    assert.equal(v.grid(), 'dqwwww')
    const [row] = v.workers(3000)
    assert.equal(row.blender, '4.2.0')
    assert.equal(row.chunk, 0)
    assert.deepEqual(row.frames, [2])
    assert.equal(row.progress?.status, 'Sample 3/16')
    assert.equal(row.secondsPerFrame, 2)
  })

  it('a chunk whose last frame is delivered leaves its worker idle, with its speed', () => {
    const v = view()
    v.apply({ type: 'chunk-granted', chunk: 0, worker: A, frames: [1, 2] }, 0)
    v.apply({ type: 'frame-done', frame: 1, worker: A, path: '', done: 1, total: 6 }, 1000)
    v.apply({ type: 'frame-done', frame: 2, worker: A, path: '', done: 2, total: 6 }, 4000)
    const [row] = v.workers(10_000)
    assert.equal(row.chunk, undefined)
    assert.equal(row.framesDone, 2)
    assert.equal(row.secondsPerFrame, 2)
    assert.equal(v.chunkOf(2), 0)
    assert.equal(v.renderedBy(2), A)
  })

  it('a failed chunk reopens its frames, or fails them when given up; an expired lease reopens them', () => {
    const v = view()
    v.apply({ type: 'chunk-granted', chunk: 0, worker: A, frames: [1, 2] }, 0)
    v.apply({ type: 'chunk-failed', chunk: 0, frames: [1, 2], worker: A, reason: 'Cannot render, no camera', final: false }, 10)
    assert.equal(v.grid(), 'wwwwww')
    v.apply({ type: 'chunk-granted', chunk: 0, worker: B, frames: [1, 2] }, 20)
    v.apply({ type: 'chunk-failed', chunk: 0, frames: [1, 2], worker: B, reason: 'Cannot render, no camera', final: true }, 30)
    v.apply({ type: 'chunk-granted', chunk: 1, worker: A, frames: [3, 4] }, 40)
    v.apply({ type: 'lease-expired', chunk: 1, frames: [3, 4], worker: A }, 50)
    assert.equal(v.grid(), 'ffwwww')
    assert.equal(v.summary(60).failed, 2)
    assert.deepEqual(v.failures.map(f => f.final), [false, true])
  })

  it('progress from a worker that does not hold the chunk changes nothing', () => {
    const v = view()
    v.apply({ type: 'chunk-granted', chunk: 0, worker: A, frames: [1, 2] }, 0)
    assert.deepEqual(v.apply({ type: 'chunk-progress', chunk: 0, worker: B, progress: progress(1, 3) }, 1), [])
    assert.deepEqual(v.apply({ type: 'chunk-progress', chunk: 0, worker: A, progress: progress(5, 3) }, 1), [])
    assert.equal(v.grid(), 'qqwwww')
  })

  it('frames already there are done from the start; done frames never go back', () => {
    const v = view([5, 6])
    assert.equal(v.grid(), 'wwwwtt')
    v.apply({ type: 'chunk-granted', chunk: 0, worker: A, frames: [1] }, 0)
    v.apply({ type: 'frame-done', frame: 1, worker: A, path: '', done: 3, total: 6 }, 10)
    v.apply({ type: 'lease-expired', chunk: 0, frames: [1], worker: A }, 20)
    assert.equal(v.grid(), 'dwwwtt')
    assert.equal(v.summary(20).done, 3)
  })

  it('the ETA follows this run\'s pace, and is unknown before its first frame', () => {
    const v = view([6])
    assert.equal(v.summary(0).etaMs, undefined)
    v.apply({ type: 'chunk-granted', chunk: 0, worker: A, frames: [1, 2] }, 1000)
    assert.equal(v.summary(5000).etaMs, undefined)
    v.apply({ type: 'frame-done', frame: 1, worker: A, path: '', done: 2, total: 6 }, 11_000)
    // One frame in 10 s since the first grant; four frames left.
    assert.equal(v.summary(11_000).etaMs, 40_000)
  })

  it('the job\'s end fails what is left, idles every worker and stops the clock', () => {
    const v = view()
    v.apply({ type: 'chunk-granted', chunk: 0, worker: A, frames: [1, 2] }, 0)
    v.finish({ succeeded: false, total: 6, done: 0, alreadyThere: 0, failedFrames: [1, 2, 3, 4, 5, 6].map(frame => ({ frame, reason: 'timed out' })), rejected: {} }, 5000)
    assert.equal(v.grid(), 'ffffff')
    assert.equal(v.workers(9000)[0].chunk, undefined)
    const summary = v.summary(9000)
    assert.equal(summary.elapsedMs, 5000)
    assert.deepEqual(summary.finished, { succeeded: false })
  })
})

describe('JobView with a chunk granted twice', () => {
  it('the first delivery of a frame ends the chunk for both workers', () => {
    const v = new JobView({ jobId: 'j1', scene: 'Scene', format: 'PNG', frames: [1], alreadyDone: new Set() }, 0)
    v.apply({ type: 'chunk-granted', chunk: 0, worker: A, frames: [1] }, 0)
    v.apply({ type: 'chunk-granted', chunk: 0, worker: B, frames: [1], speculative: true }, 10)
    v.apply({ type: 'frame-done', frame: 1, worker: B, path: '', done: 1, total: 1 }, 20)
    assert.deepEqual(v.workers(30).map(w => w.chunk), [undefined, undefined])
    assert.equal(v.grid(), 'd')
  })
})
