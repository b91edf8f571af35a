import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { JobState } from '../../src/coordinator/job-state.js'

const LEASE = 30_000
const W1 = 'worker-1'
const W2 = 'worker-2'
const W3 = 'worker-3'

function job (chunks = [[1, 2], [3, 4]]): JobState {
  return new JobState(chunks, { leaseMs: LEASE })
}

describe('job state machine', () => {
  it('open → leased: the first claim wins, the second is refused', () => {
    const state = job()
    const first = state.grant(0, W1, 0)
    const second = state.grant(0, W2, 1)
    assert.deepEqual(first, { ok: true, chunkId: 0, frames: [1, 2], expiresAt: LEASE })
    assert.equal(second.ok, false)
    assert.deepEqual(state.chunk(0)?.leases.map(l => l.worker), [W1])
  })

  it('a claim for a chunk taken is granted another open one when redirects are on', () => {
    const state = job()
    state.grant(0, W1, 0)
    const second = state.grant(0, W2, 1, { redirect: true })
    assert.deepEqual(second, { ok: true, chunkId: 1, frames: [3, 4], expiresAt: 1 + LEASE })
    const third = state.grant(0, W3, 2, { redirect: true })
    assert.equal(third.ok, false, 'nothing open, and no speculation asked for')
  })

  it('a worker holds one chunk at a time: its next claim hands the first back (a restarted worker)', () => {
    const state = job()
    state.grant(0, W1, 0)
    state.frameDone(0, 1)
    const again = state.grant(1, W1, 0)
    assert.deepEqual(again, { ok: true, chunkId: 1, frames: [3, 4], expiresAt: LEASE, released: 0 })
    assert.equal(state.chunk(0)?.status, 'open')
    assert.deepEqual(state.remaining(state.chunk(0) as NonNullable<ReturnType<JobState['chunk']>>), [2])
    assert.equal(state.checkFrame(0, 2, W1).ok, false, 'its old lease is gone')
  })

  it('leased → done once the last frame is accepted', () => {
    const state = job()
    state.grant(0, W1, 0)
    state.frameDone(0, 1)
    assert.equal(state.chunk(0)?.status, 'leased')
    state.frameDone(0, 2)
    assert.equal(state.chunk(0)?.status, 'done')
    assert.equal(state.leaseOf(W1), undefined)
  })

  it('leased → lease expired returns the chunk to open with only its missing frames', () => {
    const state = job()
    state.grant(0, W1, 0)
    state.frameDone(0, 1)
    assert.deepEqual(state.expireLeases(LEASE - 1), [])
    const lapsed = state.expireLeases(LEASE)
    assert.deepEqual(lapsed.map(l => [l.chunk.id, l.worker]), [[0, W1]])
    assert.equal(state.chunk(0)?.status, 'open')
    const regrant = state.grant(0, W2, LEASE + 1)
    assert.deepEqual(regrant.ok && regrant.frames, [2])
  })

  it('renewal extends the lease of the holder only', () => {
    const state = job()
    state.grant(0, W1, 0)
    assert.equal(state.renew(0, W2, 10).ok, false)
    const renewed = state.renew(0, W1, 20_000)
    assert.equal(renewed.ok && renewed.expiresAt, 20_000 + LEASE)
    assert.deepEqual(state.expireLeases(LEASE + 1), [])
  })

  it('frames are accepted only from the lease holder, once, and only frames of the chunk', () => {
    const state = job()
    state.grant(0, W1, 0)
    assert.equal(state.checkFrame(0, 1, W1).ok, true)
    assert.equal(state.checkFrame(0, 1, W2).ok, false)
    assert.equal(state.checkFrame(0, 3, W1).ok, false)
    assert.equal(state.checkFrame(7, 1, W1).ok, false)
    state.frameDone(0, 1)
    assert.equal(state.checkFrame(0, 1, W1).ok, false)
  })

  it('leased → failed → open: another worker may retry, the one that failed may not', () => {
    const state = job()
    state.grant(0, W1, 0)
    const present = new Set([W1, W2])
    state.fail(0, W1, 'boom', [], present)
    assert.equal(state.chunk(0)?.status, 'open')
    assert.equal(state.grant(0, W1, 1).ok, false)
    assert.equal(state.grant(0, W2, 1).ok, true)
  })

  it('failed by three different workers → failed for good', () => {
    const state = job()
    const present = new Set([W1, W2, W3, 'worker-4'])
    for (const w of [W1, W2, W3]) {
      assert.equal(state.grant(0, w, 0).ok, true)
      state.fail(0, w, 'Cannot render, no camera', [], present)
    }
    assert.equal(state.chunk(0)?.status, 'failed')
    assert.equal(state.grant(0, 'worker-4', 0).ok, false)
  })

  it('failed by every worker present → failed for good, not retried forever', () => {
    const state = job()
    state.grant(0, W1, 0)
    state.fail(0, W1, 'boom', [], new Set([W1]))
    assert.equal(state.chunk(0)?.status, 'failed')
  })

  it('an open chunk that every present worker has failed fails when the others leave', () => {
    const state = job()
    state.grant(0, W1, 0)
    state.fail(0, W1, 'boom', [], new Set([W1, W2]))
    assert.equal(state.chunk(0)?.status, 'open')
    assert.deepEqual(state.failUnclaimable(new Set([W1])).map(c => c.id), [0])
    assert.equal(state.chunk(0)?.status, 'failed')
  })

  it('a worker that failed 3 chunks of the job takes no more of it', () => {
    const state = job([[1], [2], [3], [4], [5]])
    const present = new Set([W1, W2])
    for (const id of [0, 1, 2]) {
      assert.equal(state.grant(id, W1, 0).ok, true)
      state.fail(id, W1, 'CUDA error', [], present)
    }
    assert.equal(state.benched(W1), true)
    const refused = state.grant(3, W1, 0)
    assert.equal(refused.ok, false)
    assert.match((refused as { reason: string }).reason, /failed 3 chunks of this job and takes no more of it/)
    assert.equal(state.noEligibleWorker(present), false, 'worker-2 can still render')
    assert.equal(state.grant(3, W2, 0).ok, true)
  })

  it('a benched worker counts as having tried: the job can end when only benched workers are left', () => {
    const state = job([[1], [2], [3], [4]])
    const present = new Set([W1])
    for (const id of [0, 1, 2]) {
      state.grant(id, W1, 0)
      state.fail(id, W1, 'out of memory', [], present)
    }
    assert.deepEqual([0, 1, 2].map(id => state.chunk(id)?.status), ['failed', 'failed', 'failed'])
    assert.equal(state.chunk(3)?.status, 'open', 'never tried')
    assert.equal(state.noEligibleWorker(present), true)
    assert.equal(state.noEligibleWorker(new Set([W1, W2])), false)
    assert.equal(state.noEligibleWorker(new Set()), false, 'nobody present is waiting, not failing')
  })

  it('a failure report from a worker without the lease changes nothing', () => {
    const state = job()
    state.grant(0, W1, 0)
    assert.equal(state.fail(0, W2, 'lies', [], new Set([W1, W2])), undefined)
    assert.equal(state.chunk(0)?.status, 'leased')
  })

  it('finishes when every chunk is done or failed; succeeds only if all are done', () => {
    const state = job([[1], [2]])
    state.grant(0, W1, 0)
    state.frameDone(0, 1)
    assert.equal(state.isFinished(), false)
    state.grant(1, W1, 0)
    state.fail(1, W1, 'boom', [], new Set([W1]))
    assert.equal(state.isFinished(), true)
    assert.equal(state.succeeded(), false)
    assert.deepEqual(state.counts(), { total: 2, done: 1, failed: 1 })
  })

  it('resumed: chunks whose frames are all in the output start done, the others offer only the missing frames', () => {
    const state = new JobState([[1, 2], [3, 4], [5, 6]], { leaseMs: LEASE, alreadyDone: new Set([1, 2, 4, 99]) })
    assert.equal(state.chunk(0)?.status, 'done')
    assert.deepEqual(state.openChunks().map(c => c.id), [1, 2])
    assert.equal(state.alreadyDone, 3)
    assert.deepEqual(state.progress(), { done: 3, total: 6 })
    const grant = state.grant(1, W1, 0)
    assert.deepEqual(grant.ok && grant.frames, [3])
    assert.equal(state.checkFrame(1, 4, W1).ok, false, 'a frame already there is not accepted again')
    state.frameDone(1, 3)
    assert.equal(state.chunk(1)?.status, 'done')
    assert.equal(state.isFinished(), false)
    state.grant(2, W1, 0)
    state.frameDone(2, 5)
    state.frameDone(2, 6)
    assert.equal(state.isFinished(), true)
    assert.equal(state.succeeded(), true)
    assert.deepEqual(state.counts(), { total: 6, done: 6, failed: 0 })
  })

  it('resumed with every frame already there: finished and succeeded before any claim', () => {
    const state = new JobState([[1, 2], [3]], { leaseMs: LEASE, alreadyDone: new Set([1, 2, 3]) })
    assert.equal(state.isFinished(), true)
    assert.equal(state.succeeded(), true)
    assert.equal(state.alreadyDone, 3)
    assert.equal(state.grant(0, W1, 0).ok, false)
  })
})
