/**
 * The benchmarks' own code run tiny, so that it cannot rot: each bench's
 * core function with two workers and a few frames, checked for the shape
 * of what it reports (every frame done, numbers finite, a table). Nothing
 * here asserts a time; the full runs are `npm run bench -- NAME`.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { claimsTable, refusalsBeforeFirst, runClaims, rushLine } from '../../bench/claims.js'
import { measureIdleMemory, memoryTable, verdict } from '../../bench/idle-memory.js'
import {
  runScheduling, schedulingTable, wholeChunkMakespan, type SchedulingResult
} from '../../bench/scheduling.js'

function assertFinite (values: Record<string, number>): void {
  for (const [name, value] of Object.entries(values)) {
    assert.ok(Number.isFinite(value) && value >= 0, `${name} is ${value}`)
  }
}

describe('benchmarks, tiny runs', { timeout: 180_000 }, () => {
  it('scheduling: every frame done, finite times, a table row per run', async () => {
    const results: SchedulingResult[] = []
    for (const chunkSize of [0, 1, 4]) {
      results.push(await runScheduling({ workers: 2, frames: 10, chunkSize, frameMs: 20, hosts: 2 }))
    }

    for (const r of results) {
      assert.equal(r.framesDone, 10)
      // Fixed chunks: one grant each, and maybe a speculative copy or two
      // at the end. Adaptive ones (0) start at one frame.
      if (r.run.chunkSize > 0) assert.ok(r.claimsGranted >= Math.ceil(10 / r.run.chunkSize))
      assert.ok(r.claimsGranted <= 10 + r.run.workers, `${r.claimsGranted} grants`)
      // A frame rendered by both holders of a copied chunk counts twice.
      assert.equal(r.framesBySpeed.reduce((a, b) => a + b, 0), 10 + r.framesWasted)
      // Only a speculative copy renders a frame twice, at most its chunk's
      // frames: fixed chunks have one grant each besides the copies.
      const bound = r.run.chunkSize > 0 ? (r.claimsGranted - Math.ceil(10 / r.run.chunkSize)) * r.run.chunkSize : 9
      assert.ok(r.framesWasted >= 0 && r.framesWasted <= bound, `${r.framesWasted} frames rendered twice`)
      assertFinite({
        makespan: r.makespanMs, ideal: r.idealMs, wholeChunks: r.wholeChunksMs, late: r.sleepLateMs
      })
    }
    const lines = schedulingTable(results).split('\n')
    assert.equal(lines.length, 2 + results.length)
    assert.match(lines[2], /^\| 2 \| 1×1x, 1×2x \| 20 \| 10\/10 \| adaptive \| [\d.]+ \| 0\.07 \| /)
    assert.match(lines[3], /^\| 2 \| 1×1x, 1×2x \| 20 \| 10\/10 \| 1 \| /)
  })

  it('scheduling: the whole-chunk ideal is the best schedule of whole chunks', () => {
    // 1x and 2x workers, three 100 ms frames: the 2x one takes two.
    const run = { workers: 2, frames: 3, chunkSize: 1, frameMs: 100, hosts: 1 }
    assert.equal(wholeChunkMakespan(run, [1, 2]), 100)
    assert.equal(wholeChunkMakespan({ ...run, chunkSize: 2 }, [1, 2]), 100)
  })

  it('claims: a grant per frame, finite percentiles, a table', async () => {
    const r = await runClaims({ workers: 2, frames: 10, chunkSize: 1, frameMs: 20, hosts: 1, hostNice: 5 })

    assert.equal(r.framesDone, 10)
    // One grant a frame, and maybe a speculative copy of the last ones.
    assert.ok(r.granted.length >= 10 && r.granted.length <= 10 + 2, `${r.granted.length} grants`)
    assert.equal(r.firstGrant.length, 2)
    // Every claim, renewal and release answered, over a stream per worker.
    assert.ok(r.coordinator.requests.length >= 10)
    assert.ok(r.coordinator.streams <= 2, `${r.coordinator.streams} claim streams for 2 workers`)
    const all = [...r.granted, ...r.firstGrant, ...r.coordinator.requests]
    assertFinite(Object.fromEntries(all.map((v, i) => [`sample ${i}`, v])))
    const lines = claimsTable([r]).split('\n')
    assert.equal(lines.length, 2 + 7)
    assert.match(lines[2], new RegExp(`^\\| 2 \\| claim → grant \\(worker\\) \\| ${r.granted.length} \\| [\\d.]+ \\|`))
    assert.match(refusalsBeforeFirst(r), /^claims refused before a worker's first grant: mean [\d.]+/)
    assert.deepEqual(r.hostNiceness, [5], 'the worker process runs 5 steps nicer')
    // The CPU of the start's rush, the coordinator's and the one host's.
    assert.ok(r.rushCpu !== undefined && r.rushCpu.coordinatorMs > 0 && r.rushCpu.hostsMs.length === 1 &&
      r.rushCpu.hostsMs[0] > 0, JSON.stringify(r.rushCpu))
    assert.match(rushLine(r, 2), /^CPU of the rush to every worker's first grant: coordinator \d+ ms, worker processes \d+ ms \([\d.]+ ms a worker\); \d+ ms in all, \d+ ms of all 2 cores$/)
  })

  it('idle-memory: a worker that joined, idled and rendered a job, with its memory read', async () => {
    const r = await measureIdleMemory({ idleMs: 1000, frames: 4 })

    assert.equal(r.submitExit, 0)
    assert.equal(r.framesRendered, 4)
    for (const memory of [r.bareNode, r.idle.last, r.afterJob.last]) {
      assert.ok(memory.VmRSS > 0 && memory.VmHWM >= memory.VmRSS, JSON.stringify(memory))
    }
    assert.equal(memoryTable(r).split('\n').length, 5)
    assert.match(verdict(r), /^Largest idle VmRSS: [\d.]+ MiB = [\d.]+ MB, (under|over) the 120 MB/)
  })
})
