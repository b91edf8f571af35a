/**
 * `--device` is a Cycles setting. Asked of a scene another engine renders
 * (set for every job in a config file, say), it is noted and left out,
 * and a worker without a GPU renders the job.
 */
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender } from '../../src/blender/install.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { runCli, startCliWorker, stopWorkers, type RunningWorker } from '../helpers/cli.js'
import { frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

describe('--device on a scene that Cycles does not render', { timeout: 180_000 }, () => {
  let dir: string
  let scene: string
  const workers: RunningWorker[] = []

  before(async () => {
    dir = await tempDir('blendnet-device-')
    const blender = await findBlender()
    const cycles = join(dir, 'cycles.blend')
    await makeDemoScene(blender, cycles, { frames: 2, width: 64, height: 36, samples: 1 })
    scene = join(dir, 'workbench.blend')
    await execa(blender.path, ['-b', '--factory-startup', cycles, '--python-exit-code', '1', '--python-expr',
      'import bpy; bpy.context.scene.render.engine = "BLENDER_WORKBENCH"; ' +
      `bpy.ops.wm.save_as_mainfile(filepath=${JSON.stringify(scene)})`])
  })

  after(async () => {
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  })

  it('is noted, not passed on: a worker without a GPU renders the job', async () => {
    const worker = await startCliWorker(join(dir, 'worker'))
    workers.push(worker)
    const output = join(dir, 'renders')
    const result = await runCli(['submit', scene, '--device', 'GPU', '--output', output,
      '--bootstrap', worker.addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string,
      /^note: --device GPU is for Cycles; scene "Scene" renders with BLENDER_WORKBENCH, which does not use it$/m)
    assert.deepEqual(await frameFiles(output), ['frame_0001.png', 'frame_0002.png'])
  })
})
