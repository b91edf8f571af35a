import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { JsonEvents } from '../../src/cli/json-events.js'
import { describeEvent } from '../../src/cli/progress.js'

const W = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

describe('JsonEvents', () => {
  it('writes each event as one line: its kind and time first, then its fields', () => {
    const lines: string[] = []
    const json = new JsonEvents(text => { lines.push(text) })
    json.event({ type: 'chunk-progress', chunk: 2, worker: W, progress: { frame: 9, sample: 3, samples: 8, status: 'Sample 3/8\n' } })
    json.jobFinished({ succeeded: false, total: 2, done: 1, alreadyThere: 0, failedFrames: [{ frame: 2, reason: 'no camera' }], rejected: {} }, 1500, 'SIGINT')
    assert.ok(lines.every(line => line.endsWith('\n') && !line.slice(0, -1).includes('\n')))
    const [progress, finished] = lines.map(line => JSON.parse(line))
    assert.deepEqual(Object.keys(progress).slice(0, 2), ['event', 'time'])
    assert.equal(progress.event, 'chunk-progress')
    assert.deepEqual(progress.progress, { frame: 9, sample: 3, samples: 8, status: 'Sample 3/8\n' })
    assert.equal(finished.event, 'job-finished')
    assert.deepEqual(finished.failedFrames, [{ frame: 2, reason: 'no camera' }])
    assert.equal(finished.interrupted, 'SIGINT')
  })
})

describe('describeEvent (plain lines, when stdout is not a terminal)', () => {
  it('tells a worker leaving, and leaves progress to the live displays', () => {
    assert.equal(describeEvent({ type: 'worker-left', worker: W, stopped: false }), 'worker …AAAAAA left (not heard from for a while)')
    assert.equal(describeEvent({ type: 'worker-left', worker: W, stopped: true }), 'worker …AAAAAA left (it stopped)')
    assert.equal(describeEvent({ type: 'chunk-progress', chunk: 0, worker: W, progress: { frame: 1, sample: 0, samples: 0, status: '' } }), undefined)
    assert.equal(describeEvent({ type: 'frame-done', frame: 3, worker: W, path: '/o/frame_0003.png', done: 2, total: 4 }), 'frame 3 done (2/4) from …AAAAAA')
  })

  it('tells waiting for a first worker from waiting after every worker left', () => {
    assert.match(describeEvent({ type: 'waiting-for-workers', waitedMs: 3000, peers: 0 }) ?? '',
      /^waiting for workers… none has joined yet \(3s\); no peer was reached/)
    assert.equal(describeEvent({ type: 'waiting-for-workers', waitedMs: 13_000, peers: 0, allLeft: true }),
      'waiting for workers… every worker left (13s ago)')
  })
})
