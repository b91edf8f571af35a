import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { renderLiveView } from '../../src/cli/live-progress.js'
import type { JobSummary, WorkerRow } from '../../src/progress/job-view.js'

const summary = (over: Partial<JobSummary> = {}): JobSummary =>
  ({ total: 48, done: 12, alreadyThere: 0, failed: 0, elapsedMs: 40_000, etaMs: 80_000, ...over })

const busy: WorkerRow = {
  peer: '12D3KooWxxxxxxxxa1b2c3', blender: '4.2.0', present: true, chunk: 4, frames: [13, 14],
  progress: { frame: 13, sample: 12, samples: 64, status: 'Sample 12/64' }, framesDone: 3, secondsPerFrame: 4.25
}
const idle: WorkerRow = { peer: '12D3KooWyyyyyyyyd4e5f6', blender: '4.2.0', present: true, frames: [], framesDone: 0 }

describe('renderLiveView', () => {
  it('shows frames done of total, the ETA, a bar and a line per worker', () => {
    assert.equal(renderLiveView({ summary: summary(), workers: [busy, idle] }, 80), [
      'frames 12/48 done (25%) · ETA 1m20s · 40s elapsed',
      `[${'█'.repeat(12)}${'░'.repeat(36)}]`,
      '…a1b2c3  chunk 4  frame 13  Sample 12/64  4.3 s/frame',
      '…d4e5f6  idle  0 done'
    ].join('\n'))
  })

  it('counts failures, says when the ETA is not known yet and when no worker is there', () => {
    const text = renderLiveView({ summary: summary({ done: 0, failed: 24, etaMs: undefined }), workers: [] }, 80)
    assert.equal(text.split('\n')[0], 'frames 0/48 done (0%) · 24 failed · ETA after the first frame · 40s elapsed')
    assert.equal(text.split('\n')[1], `[${'×'.repeat(24)}${'░'.repeat(24)}]`)
    assert.equal(text.split('\n')[2], 'no worker yet')
  })

  it('fits every line to a narrow terminal, so that the redraw never wraps', () => {
    const text = renderLiveView({ summary: summary(), workers: [busy] }, 30)
    for (const line of text.split('\n')) assert.ok(line.length <= 29, line)
  })

  it('leaves out workers that left without a chunk, and says how many more there are', () => {
    const gone = { ...idle, present: false }
    const many = Array.from({ length: 15 }, (_, i) => ({ ...idle, peer: `12D3KooW${String(i).padStart(6, '0')}` }))
    const lines = renderLiveView({ summary: summary(), workers: [gone, ...many] }, 80).split('\n')
    assert.equal(lines.length, 2 + 12 + 1)
    assert.equal(lines.at(-1), '… and 3 more workers')
  })
})
