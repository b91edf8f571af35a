import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { RenderProgress } from '../../src/blender/render-progress.js'
import { ProgressReporter } from '../../src/worker/progress-reporter.js'
import { waitFor } from '../helpers/swarm.js'

const line = (frame: number, sample: number): string =>
  `Fra:${frame} Mem:1M | Time:00:00.01 | Scene, ViewLayer | Sample ${sample}/8`

/** A coordinator link whose reports complete only when the test says. */
function heldLink (): { sent: RenderProgress[], release: () => void, send: (p: RenderProgress) => Promise<void> } {
  const sent: RenderProgress[] = []
  let releases: Array<() => void> = []
  return {
    sent,
    release: () => { releases.forEach(r => { r() }); releases = [] },
    send: async (p) => {
      sent.push(p)
      await new Promise<void>(resolve => { releases.push(resolve) })
    }
  }
}

describe('ProgressReporter', () => {
  it('sends one report at a time, then the latest progress, skipping what it replaced', async () => {
    const link = heldLink()
    const reporter = new ProgressReporter(link.send, {}, 0)
    reporter.onLogLine(line(3, 1))
    await waitFor(() => link.sent.length === 1, 'the first report')
    for (let s = 2; s <= 6; s++) reporter.onLogLine(line(3, s))
    reporter.onLogLine('Saved: something else')
    assert.equal(link.sent.length, 1)

    link.release()
    await waitFor(() => link.sent.length === 2, 'the second report')
    assert.deepEqual(link.sent.map(p => p.sample), [1, 6])
    reporter.stop()
    link.release()
  })

  it('reports a frame start from render_chunk.py, and stops for good after a failed send', async () => {
    const sent: RenderProgress[] = []
    const reporter = new ProgressReporter(async (p) => { sent.push(p); throw new Error('protocol not supported') }, {}, 0)
    reporter.onLogLine('blendnet-chunk: {"event": "frame-start", "frame": 7, "path": "/x/frame_0007.png"}')
    await waitFor(() => sent.length === 1, 'the report')
    assert.deepEqual(sent[0], { frame: 7, sample: 0, samples: 0, status: 'starting' })
    reporter.onLogLine(line(7, 2))
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(sent.length, 1)
  })
})
