/**
 * Chaos: a 60-frame job on 5 worker processes (a fake Blender taking
 * 0.2 s a frame) while random workers are SIGKILLed and restarted every
 * few seconds and the submit is SIGKILLed once and run again. The job
 * completes and the output holds every frame exactly once, as the journal
 * says. BLENDNET_CHAOS_SEED=N replays a run's kill schedule; the seed is
 * printed as a diagnostic. The larger run is bench/chaos.ts.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { ChaosRun, randomSeed } from '../helpers/chaos.js'

const FRAMES = 60
const TIME_LIMIT_MS = 4 * 60_000

describe('chaos: workers and the submit are killed mid-job', { timeout: TIME_LIMIT_MS + 60_000 }, () => {
  const seed = Number(process.env.BLENDNET_CHAOS_SEED ?? randomSeed())
  const lines: string[] = []
  const chaos = new ChaosRun({
    frames: FRAMES, workers: 5, killEveryMs: 3000, submitKills: 1, frameSeconds: 0.2, seed,
    timeoutMs: TIME_LIMIT_MS, log: line => { lines.push(line) }
  })

  // Also when an assertion or the time limit fails the test.
  after(async () => { await chaos.stop() })

  it('completes with every frame once, matching the journal', async (t) => {
    t.diagnostic(`seed ${seed} (BLENDNET_CHAOS_SEED=${seed} replays the kill schedule)`)
    const r = await chaos.run().finally(() => { for (const line of lines) t.diagnostic(line) })
    t.diagnostic(`${r.wallSeconds.toFixed(1)} s, ${r.workerKills} worker kills, ${r.submitKills} submit kill ` +
      `(${r.journaledAtSubmitKills.join(', ')} frames journaled then), ${r.leaseExpiries} lease expiries, ` +
      `fake rendered ${r.renderedByFake} frames for ${FRAMES}; ${r.summary}`)

    assert.deepEqual(r.problems, [], `the output folder (seed ${seed}, kept in ${r.dir})`)
    assert.deepEqual(r.neverRendered, [], 'frames the fake never rendered')
    assert.ok(r.renderedByFake >= FRAMES)
    assert.match(r.summary, new RegExp(`^done: ${FRAMES} frames in \\S+: \\d+ rendered now, \\d+ already there`))

    assert.equal(r.submitKills, 1)
    const [journaled] = r.journaledAtSubmitKills
    assert.ok(journaled > 0 && journaled < FRAMES, `${journaled} frames journaled when submit was killed`)
    // The first kill comes at most 4.5 s in, and a job with a submit killed
    // and run again takes longer than that; how many follow depends on pace.
    assert.ok(r.workerKills >= 1, `only ${r.workerKills} worker kills in ${r.wallSeconds.toFixed(1)} s`)
    // Every restart reused a work dir whose worker.lock named the dead PID.
    assert.equal(r.staleLocks, r.workerKills)
  })
})
