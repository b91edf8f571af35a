import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { redialDelay, REDIAL_FIRST_MS, REDIAL_MAX_MS } from '../../src/net/bootstrap-keeper.js'

describe('bootstrap redial backoff', () => {
  it('doubles from a second up to a minute, and stays there for good', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(redialDelay), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000])
    assert.equal(redialDelay(1), REDIAL_FIRST_MS)
    assert.equal(redialDelay(10_000), REDIAL_MAX_MS, 'no overflow after days of attempts')
  })
})
