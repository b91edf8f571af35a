/**
 * Chunks cut to size at grant time, speculative copies at the end of a
 * job, and the scheduler that decides both from measured speeds.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Chunk } from '../../src/coordinator/chunks.js'
import { JobState } from '../../src/coordinator/job-state.js'
import { Scheduler } from '../../src/coordinator/scheduler.js'

const LEASE = 30_000
const [W1, W2, W3] = ['worker-1', 'worker-2', 'worker-3']
const frames = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i)

function granted (g: ReturnType<JobState['grant']>): { chunkId: number, frames: number[], speculative?: boolean } {
  assert.equal(g.ok, true, g.ok ? '' : g.reason)
  return g as { chunkId: number, frames: number[], speculative?: boolean }
}

describe('chunks cut to size', () => {
  it('a grant of n frames takes the first n; the rest is a new open chunk', () => {
    const state = new JobState([frames(1, 10)], { leaseMs: LEASE })
    const g = granted(state.grant(0, W1, 0, { size: 3 }))
    assert.deepEqual([g.chunkId, g.frames], [0, [1, 2, 3]])
    assert.deepEqual(state.chunk(0)?.frames, [1, 2, 3])
    assert.deepEqual(state.openChunks().map(c => [c.id, c.frames]), [[1, frames(4, 10)]])
    assert.deepEqual(state.progress(), { done: 0, total: 10 }, 'no frame lost or added')
    const next = granted(state.grant(0, W2, 0, { redirect: true, size: 4 }))
    assert.deepEqual([next.chunkId, next.frames], [1, [4, 5, 6, 7]])
    assert.deepEqual(state.openChunks().map(c => c.frames), [[8, 9, 10]])
  })

  it('a reopened chunk is cut by its missing frames only', () => {
    const state = new JobState([frames(1, 6)], { leaseMs: LEASE })
    state.grant(0, W1, 0)
    state.frameDone(0, 1)
    state.frameDone(0, 3)
    state.release(0, W1)
    const g = granted(state.grant(0, W2, 0, { size: 2 }))
    assert.deepEqual(g.frames, [2, 4])
    assert.deepEqual(state.chunk(0)?.frames, [1, 2, 3, 4])
    assert.deepEqual(state.openChunks().map(c => c.frames), [[5, 6]])
    state.frameDone(0, 2)
    state.frameDone(0, 4)
    assert.equal(state.chunk(0)?.status, 'done')
    assert.equal(state.isFinished(), false, 'the cut-off chunk is still open')
  })

  it('a job finishes only when every chunk, cut-off ones included, is settled', () => {
    const state = new JobState([frames(1, 4)], { leaseMs: LEASE })
    for (const f of frames(1, 4)) {
      const g = granted(state.grant(0, W1, 0, { redirect: true, size: 1 }))
      assert.deepEqual(g.frames, [f])
      state.frameDone(g.chunkId, f)
    }
    assert.equal(state.chunks.length, 4)
    assert.equal(state.isFinished(), true)
    assert.equal(state.succeeded(), true)
  })

  it('a redirect skips chunks the claimer failed', () => {
    const state = new JobState([[1], [2]], { leaseMs: LEASE })
    state.grant(0, W1, 0)
    state.fail(0, W1, 'boom', [], new Set([W1, W2]))
    const g = granted(state.grant(0, W1, 0, { redirect: true }))
    assert.equal(g.chunkId, 1)
  })
})

describe('speculative copies', () => {
  const copyFirst = (c: Chunk[]): Chunk | undefined => c[0]

  it('with nothing open, an idle worker copies a leased chunk, last frame first', () => {
    const state = new JobState([frames(1, 4)], { leaseMs: LEASE })
    state.grant(0, W1, 0)
    state.frameDone(0, 1)
    const copy = granted(state.grant(0, W2, 5, { redirect: true, speculate: copyFirst }))
    assert.deepEqual(copy, { ok: true, chunkId: 0, frames: [4, 3, 2], expiresAt: 5 + LEASE, speculative: true })
    assert.equal(state.holds(state.chunk(0), W1), true)
    assert.equal(state.holds(state.chunk(0), W2), true)
    assert.equal(state.grant(0, W3, 5, { redirect: true, speculate: copyFirst }).ok, false,
      'one copy per chunk')
  })

  it('the first copy of a frame wins; the other holder is told it is stale', () => {
    const state = new JobState([frames(1, 3)], { leaseMs: LEASE })
    state.grant(0, W1, 0)
    state.grant(0, W2, 0, { redirect: true, speculate: copyFirst })
    assert.equal(state.checkFrame(0, 3, W2).ok, true)
    state.frameDone(0, 3)
    const late = state.checkFrame(0, 3, W1)
    assert.equal(late.ok, false)
    assert.equal(!late.ok && late.stale, true)
    state.frameDone(0, 1)
    state.frameDone(0, 2)
    assert.equal(state.chunk(0)?.status, 'done')
    assert.equal(state.leaseOf(W1), undefined)
    assert.equal(state.leaseOf(W2), undefined)
    assert.equal(state.renew(0, W1, 1).ok, false, 'renewals now fail: both stop')
  })

  it('the chunk stays leased while either holder is on it; it reopens when both are gone', () => {
    const state = new JobState([frames(1, 3)], { leaseMs: LEASE })
    state.grant(0, W1, 0)
    state.grant(0, W2, 10, { redirect: true, speculate: copyFirst })
    state.fail(0, W2, 'out of memory', [], new Set([W1, W2]))
    assert.equal(state.chunk(0)?.status, 'leased', 'the first holder goes on')
    assert.deepEqual(state.expireLeases(LEASE).map(l => l.worker), [W1])
    assert.equal(state.chunk(0)?.status, 'open')
    assert.equal(state.grant(0, W2, LEASE, { redirect: true }).ok, false, 'W2 failed it')
    assert.equal(granted(state.grant(0, W3, LEASE, { redirect: true })).chunkId, 0)
  })

  it('a worker never copies its own chunk or one it failed', () => {
    const state = new JobState([[1, 2], [3, 4]], { leaseMs: LEASE })
    state.grant(0, W1, 0)
    state.grant(1, W2, 0)
    state.fail(1, W2, 'boom', [], new Set([W1, W2, W3]))
    state.grant(1, W3, 0)
    const seen: number[][] = []
    state.grant(0, W2, 0, { redirect: true, speculate: (c) => { seen.push(c.map(x => x.id)); return undefined } })
    assert.deepEqual(seen, [[0]], 'W2 may copy chunk 0 only: it failed chunk 1')
  })
})

describe('scheduler', () => {
  const everyone = new Set([W1, W2])

  it('a first chunk is one frame; later ones follow the measured speed', () => {
    const s = new Scheduler({ fixed: false, targetMs: 10_000 })
    assert.equal(s.policy(W1, everyone, 1000, 0).size, 1)
    s.granted(W1, 0)
    s.frameAccepted(W1, 1000)
    assert.equal(s.msPerFrame(W1), 1000)
    assert.equal(s.policy(W1, new Set([W1]), 1000, 1000).size, 10)
    s.frameAccepted(W1, 1500)
    assert.equal(s.msPerFrame(W1), 850, 'smoothed, not replaced')
  })

  it('near the end a worker takes a part of what is left in proportion to its speed', () => {
    const s = new Scheduler({ fixed: false, targetMs: 600_000 })
    s.granted(W1, 0); s.frameAccepted(W1, 1000)
    s.granted(W2, 0); s.frameAccepted(W2, 4000)
    // 20 frames left: W1 is 4x W2, so its share is 16; half of that now.
    assert.equal(s.policy(W1, everyone, 20, 0).size, 8)
    assert.equal(s.policy(W2, everyone, 20, 0).size, 2)
  })

  it('fixed chunks are never cut', () => {
    const s = new Scheduler({ fixed: true, targetMs: 1000 })
    assert.equal(s.policy(W1, everyone, 100, 0).size, undefined)
  })

  it('copies the chunk expected to finish last, and only when that beats a frame of the copier', () => {
    const s = new Scheduler({ fixed: false, targetMs: 60_000 })
    s.granted(W1, 0); s.frameAccepted(W1, 4000) // slow: 4 s a frame
    s.granted(W2, 0); s.frameAccepted(W2, 1000) // fast: 1 s a frame
    s.granted(W1, 4000)
    const state = new JobState([[1, 2, 3], [4]], { leaseMs: LEASE })
    state.grant(0, W1, 4000)
    state.grant(1, W3, 4000)
    const policy = s.policy(W2, everyone, 0, 4500)
    const copy = state.grant(1, W2, 4500, policy)
    assert.equal(copy.ok && copy.speculative, true)
    assert.equal(copy.ok && copy.chunkId, 0, 'W1 needs about 11.5 s more for chunk 0')

    const calm = new Scheduler({ fixed: false, targetMs: 60_000 })
    calm.granted(W1, 0); calm.frameAccepted(W1, 1000)
    calm.granted(W2, 0); calm.frameAccepted(W2, 1000)
    const one = new JobState([[1]], { leaseMs: LEASE })
    one.grant(0, W1, 1000)
    assert.equal(one.grant(0, W2, 1200, calm.policy(W2, everyone, 0, 1200)).ok, false,
      'W1 finishes its last frame in 0.8 s, sooner than W2 could')
  })
  it('holds back a slow worker whose frame would end after the busy fast ones render what is open', () => {
    const s = new Scheduler({ fixed: false, targetMs: 60_000 })
    s.granted(W1, 0); s.frameAccepted(W1, 4000) // slow: 4 s a frame
    s.granted(W2, 0); s.frameAccepted(W2, 1000) // fast: 1 s a frame
    s.granted(W3, 0); s.frameAccepted(W3, 1000)
    s.granted(W2, 4000); s.granted(W3, 4000)
    const state = new JobState([[1], [2], frames(3, 7)], { leaseMs: LEASE })
    state.grant(0, W2, 4000)
    state.grant(1, W3, 4000)
    // At 4 s W2 and W3 are free again at 5 s; by 8 s, when W1 would end a
    // frame, they render 3 each: more than the 5 open.
    const policy = s.policy(W1, new Set([W1, W2, W3]), 5, 4000, state.framesLeftByHolder())
    const refused = state.grant(2, W1, 4000, policy)
    assert.equal(refused.ok, false)
    assert.equal(!refused.ok && refused.wait, true, 'told to wait for the next announcement')
    assert.deepEqual(state.openChunks().map(c => c.frames), [frames(3, 7)], 'nothing taken')

    // Eight open frames are more than the fast two render by then: W1 gets one.
    const more = new JobState([[1], [2], frames(3, 10)], { leaseMs: LEASE })
    more.grant(0, W2, 4000)
    more.grant(1, W3, 4000)
    assert.equal(s.policy(W1, new Set([W1, W2, W3]), 8, 4000, more.framesLeftByHolder()).holdBack, undefined)
    // A holder far past its pace (stuck) is not counted on.
    assert.equal(s.policy(W1, new Set([W1, W2, W3]), 5, 9000, state.framesLeftByHolder()).holdBack, undefined)

    // Fixed chunks too: only the chunk's size is not the scheduler's to set.
    const fixed = new Scheduler({ fixed: true, targetMs: 60_000 })
    for (const [w, ms] of [[W1, 4000], [W2, 1000], [W3, 1000]] as const) {
      fixed.granted(w, 0); fixed.frameAccepted(w, ms); fixed.granted(w, 4000)
    }
    assert.equal(typeof fixed.policy(W1, new Set([W1, W2, W3]), 5, 4000, state.framesLeftByHolder()).holdBack, 'string')
  })
})

describe('what is left to hand out', () => {
  it('counts open frames through grants, cuts, completions and reopenings', () => {
    const state = new JobState([frames(1, 10), frames(11, 12)], { leaseMs: LEASE, alreadyDone: new Set([12]) })
    const count = (): number => state.backlog().openFrames
    const byHand = (): number => state.openChunks().reduce((n, c) => n + state.remaining(c).length, 0)
    assert.equal(count(), 11)
    state.grant(0, W1, 0, { size: 3 })
    assert.equal(count(), 8)
    assert.equal(count(), byHand())
    state.frameDone(0, 1)
    state.release(0, W1)
    assert.equal(count(), byHand())
    assert.equal(count(), 10)
    state.grant(1, W2, 0)
    state.frameDone(1, 11)
    assert.equal(count(), byHand())
    assert.equal(state.backlog().openChunks, 2)
    assert.deepEqual(state.openChunks(1).map(c => c.id), [2], 'the first opened first')
  })
})
