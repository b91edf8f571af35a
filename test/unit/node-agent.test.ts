import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { COORDINATOR_AGENT, isCoordinatorAgent } from '../../src/net/node.js'

describe('the agent a submit\'s node gives in identify', () => {
  it('is known by its name, whatever version follows', () => {
    assert.equal(isCoordinatorAgent(`${COORDINATOR_AGENT}/1`), true)
    assert.equal(isCoordinatorAgent(`${COORDINATOR_AGENT}/7 extra`), true)
  })

  it('is not any other peer\'s', () => {
    for (const agent of [undefined, '', 'libp2p/3.0.0 UserAgent=node/24', `x${COORDINATOR_AGENT}/1`, `${COORDINATOR_AGENT}-fake/1`]) {
      assert.equal(isCoordinatorAgent(agent), false, String(agent))
    }
  })
})
