/**
 * The coordinator's book of chunk logs: a log sent before a chunk's last
 * frame owes nothing; frames written ahead of their log (a chunk split by
 * a speculative copy) hold the job's end until the log comes, as long as
 * the worker that owes it is still connected.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ChunkLogBook } from '../../src/coordinator/log-book.js'
import type { SwarmNode } from '../../src/net/node.js'

/** A node with open connections to these peers only. */
function connectedTo (...peers: string[]): Pick<SwarmNode, 'getConnections'> {
  return {
    getConnections: () => peers.map(peer => ({ remotePeer: { toString: () => peer }, status: 'open' }))
  } as unknown as Pick<SwarmNode, 'getConnections'>
}

describe('chunk log book', () => {
  it('one log per worker and chunk', () => {
    const book = new ChunkLogBook()
    assert.equal(book.take(3, 'w1'), true)
    book.settled()
    assert.equal(book.take(3, 'w1'), false)
    assert.equal(book.take(3, 'w2'), true, 'another worker of the same chunk (a speculative copy)')
    assert.equal(book.take(4, 'w1'), true)
  })

  it('a log sent before the last frame leaves nothing owed', async () => {
    const book = new ChunkLogBook()
    book.frameWritten(0, 'w1')
    book.frameWritten(0, 'w1')
    assert.equal(book.take(0, 'w1'), true)
    book.settled()
    book.frameWritten(0, 'w1')
    const started = Date.now()
    await book.collect(connectedTo('w1'), 'job', 5000)
    assert.ok(Date.now() - started < 1000, 'nothing to wait for')
  })

  it('waits for a connected worker that owes a log, and for a log being received', async () => {
    const book = new ChunkLogBook()
    book.frameWritten(5, 'w1')
    book.frameWritten(5, 'w2')
    let collected = false
    const collecting = book.collect(connectedTo('w1', 'w2'), 'job', 10_000).then(() => { collected = true })
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(book.take(5, 'w1'), true)
    book.settled()
    assert.equal(book.take(5, 'w2'), true)
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(collected, false, 'w2\'s log is still being received')
    book.settled()
    await collecting
    assert.equal(collected, true)
  })

  it('does not wait for a worker that is gone, and gives up after the grace', async () => {
    const gone = new ChunkLogBook()
    gone.frameWritten(1, 'w1')
    let started = Date.now()
    await gone.collect(connectedTo('w2'), 'job', 10_000)
    assert.ok(Date.now() - started < 1000, 'w1 is not connected')

    const silent = new ChunkLogBook()
    silent.frameWritten(1, 'w1')
    started = Date.now()
    await silent.collect(connectedTo('w1'), 'job', 200)
    const waited = Date.now() - started
    assert.ok(waited >= 190 && waited < 2000, `waited ${waited} ms for a log never sent`)
  })
})
