import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseRenderProgress } from '../../src/blender/render-progress.js'

/** Lines exactly as Debian's Blender 3.4.1 printed them. */
const CYCLES = 'Fra:1 Mem:10.02M (Peak 10.39M) | Time:00:00.03 | Remaining:00:00.02 | ' +
  'Mem:0.99M, Peak:0.99M | Scene, ViewLayer | Sample 1/16'
const EEVEE = 'Fra:1 Mem:10.91M (Peak 11.99M) | Time:00:02.61 | Rendering 26 / 64 samples'
const SYNC = 'Fra:-3 Mem:9.14M (Peak 10.39M) | Time:00:00.00 | Mem:0.00M, Peak:0.00M | ' +
  'Scene, ViewLayer | Synchronizing object | Sphere'

describe('parseRenderProgress', () => {
  it('reads Cycles samples and what Blender is doing', () => {
    assert.deepEqual(parseRenderProgress(CYCLES), { frame: 1, sample: 1, samples: 16, status: 'Sample 1/16' })
  })

  it('reads EEVEE samples', () => {
    assert.deepEqual(parseRenderProgress(EEVEE), { frame: 1, sample: 26, samples: 64, status: 'Rendering 26 / 64 samples' })
  })

  it('keeps set-up steps as status, with no samples, negative frames included', () => {
    assert.deepEqual(parseRenderProgress(SYNC), { frame: -3, sample: 0, samples: 0, status: 'Synchronizing object | Sphere' })
  })

  it('ignores lines that are not progress, and counts that do not add up', () => {
    assert.equal(parseRenderProgress("Saved: '/tmp/frame_0001.png'"), undefined)
    assert.equal(parseRenderProgress('Fra:'), undefined)
    const odd = parseRenderProgress('Fra:2 Mem:1M | Sample 9/4')
    assert.deepEqual([odd?.sample, odd?.samples], [0, 0])
  })

  it('strips control characters and bounds the status', () => {
    const status = parseRenderProgress(`Fra:2 Mem:1M | \x1b[31m${'x'.repeat(500)}`)?.status ?? ''
    assert.ok(status.length <= 120)
    assert.doesNotMatch(status, /\x1b/)
  })
})
