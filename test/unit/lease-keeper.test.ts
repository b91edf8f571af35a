import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CoordinatorClient } from '../../src/worker/coordinator-client.js'
import { LeaseKeeper } from '../../src/worker/lease-keeper.js'

/** A client whose renewals get the given answers, one per beat. */
function clientAnswering (answers: Array<'ok' | 'refused' | 'unreachable'>): CoordinatorClient & { calls: number } {
  const client = {
    jobId: 'job1',
    calls: 0,
    async renew () {
      const answer = answers[Math.min(client.calls++, answers.length - 1)]
      if (answer === 'unreachable') throw new Error('connection refused')
      return answer === 'ok'
        ? { ok: true as const, frames: [1], leaseMs: 3000 }
        : { ok: false as const, reason: 'lease lapsed' }
    }
  }
  return client as unknown as CoordinatorClient & { calls: number }
}

async function beats (t: { mock: { timers: { tick: (ms: number) => void } } }, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    t.mock.timers.tick(1000)
    await new Promise(resolve => setImmediate(resolve))
  }
}

describe('LeaseKeeper', () => {
  it('renews every third of the lease and stays quiet while renewals succeed', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'] })
    const lost: string[] = []
    const client = clientAnswering(['ok'])
    const keeper = new LeaseKeeper(client, 0, 3000, reason => { lost.push(reason) })
    await beats(t, 10)
    keeper.stop()
    assert.equal(client.calls, 10)
    assert.deepEqual(lost, [])
  })

  it('gives the chunk up when the coordinator refuses a renewal', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'] })
    const lost: string[] = []
    const keeper = new LeaseKeeper(clientAnswering(['ok', 'refused']), 0, 3000, reason => { lost.push(reason) })
    await beats(t, 2)
    keeper.stop()
    assert.deepEqual(lost, ['lease lapsed'])
  })

  it('rides out a few lost renewals, and gives up once a whole lease passed without one', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'] })
    const lost: string[] = []
    const client = clientAnswering(['ok', 'unreachable', 'unreachable', 'ok', 'unreachable'])
    const keeper = new LeaseKeeper(client, 0, 3000, reason => { lost.push(reason) })
    await beats(t, 6)
    assert.deepEqual(lost, [], 'two misses within the lease are not a loss')
    await beats(t, 2)
    assert.equal(lost.length, 1)
    assert.match(lost[0], /no renewal reached the coordinator for 4 s, so the lease has lapsed/)
    const calls = client.calls
    await beats(t, 3)
    assert.equal(client.calls, calls, 'no renewals after giving up')
    keeper.stop()
  })
})
