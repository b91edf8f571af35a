/**
 * Two artists submit to one swarm at once, with `blendnet` processes: both
 * jobs complete, and with one worker (workers scarce) the job of higher
 * priority finishes first, though it was submitted second.
 */
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { CLI, startCliWorker, stopWorkers, TEST_ENV, type RunningWorker } from '../helpers/cli.js'
import { frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

const SIDE = 8

describe('two submits on one swarm', { timeout: 300_000 }, () => {
  let dir: string
  let scene: string
  let worker: RunningWorker

  before(async () => {
    dir = await tempDir('blendnet-priorities-')
    scene = join(dir, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: 12, width: SIDE, height: SIDE })
    worker = await startCliWorker(join(dir, 'worker'), [],
      ['--blender', packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts'), '--sandbox', 'none'],
      { FAKE_BLENDER_COUNT_LOG: join(dir, 'rendered.log'), FAKE_BLENDER_FRAME_SIZE: String(SIDE), FAKE_BLENDER_FRAME_SECONDS: '0.7' })
  })

  after(async () => {
    await stopWorkers([worker])
    await rm(dir, { recursive: true, force: true })
  })

  function submit (name: string, frames: string, priority: number) {
    const proc = execa(process.execPath, [CLI, 'submit', scene, '--frames', frames, '--chunk-size', '1',
      '--priority', String(priority), '--output', join(dir, name), '--bootstrap', worker.addr,
      '--key', join(dir, `${name}.key`)], { all: true, reject: false, env: TEST_ENV })
    return proc.then(result => ({ result, endedAt: Date.now() }))
  }

  it('both complete; the higher priority one first, when workers are scarce', async () => {
    // The first artist's job is the smaller one: taking turns, or first
    // come first served, it would end first.
    const low = submit('low', '1-8', 0)
    // The second artist submits a little later, with a higher priority.
    await new Promise(resolve => setTimeout(resolve, 500))
    const high = submit('high', '1-12', 50)
    const [l, h] = await Promise.all([low, high])
    assert.equal(l.result.exitCode, 0, l.result.all)
    assert.equal(h.result.exitCode, 0, h.result.all)
    assert.equal((await frameFiles(join(dir, 'low'))).length, 8)
    assert.equal((await frameFiles(join(dir, 'high'))).length, 12)
    assert.ok(h.endedAt < l.endedAt, `high ended ${(l.endedAt - h.endedAt) / 1000} s before low`)
  })
})
