/**
 * Python stored in a .blend runs only when the job allows it and the
 * worker's operator does too: a scripted driver moves the sphere, so the
 * frames show whether it ran.
 */
import assert from 'node:assert/strict'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { runCli, startCliWorker, stopWorkers, type RunningWorker } from '../helpers/cli.js'
import { assertFramesMatchPlain, frameFiles } from '../helpers/frames.js'
import { samePixels } from '../fixtures/pixels.js'
import { tempDir } from '../helpers/swarm.js'

const ADD_PYTHON_DRIVER = [
  'import bpy',
  'sphere = bpy.data.objects["Sphere"]',
  'driver = sphere.driver_add("location", 0).driver',
  'driver.type = "SCRIPTED"',
  'driver.expression = "__import__(\'math\').sin(frame) * 2"',
  'bpy.ops.wm.save_mainfile(compress=False)'
].join('\n')

describe('jobs whose scene needs Python', { timeout: 300_000 }, () => {
  let blender: BlenderInstall
  let dir: string
  let scene: string
  const workers: RunningWorker[] = []

  before(async () => {
    blender = await findBlender()
    dir = await tempDir('blendnet-scripts-')
    scene = join(dir, 'driven.blend')
    await makeDemoScene(blender, scene, { frames: 4 })
    await execa(blender.path, ['-b', '--factory-startup', scene, '--python-expr', ADD_PYTHON_DRIVER])
    workers.push(await startCliWorker(join(dir, 'no-scripts')))
  })

  after(async () => {
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  })

  function submit (output: string, extra: string[] = []): ReturnType<typeof runCli> {
    return runCli(['submit', scene, '--frames', '1-2', '--output', join(dir, output),
      '--bootstrap', workers[0].addr, ...extra], 120_000)
  }

  it('without --allow-scripts the driver is named in a note and does not run', async () => {
    const result = await submit('off')
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string,
      /needs Python that workers do not run unless you pass --allow-scripts.*driver Sphere/)
  })

  it('--allow-scripts on a swarm that allows none ends with what is missing', async () => {
    const result = await submit('refused', ['--allow-scripts'])
    assert.equal(result.exitCode, 1, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string,
      /no worker can render this job \(needs Python scripts allowed, allows none\); the swarm offers 1 worker: .*no scripts/)
    assert.deepEqual(await frameFiles(join(dir, 'refused')), [])
  })

  it('--allow-scripts on a worker that allows them renders like Blender with auto-run on', async () => {
    workers.push(await startCliWorker(join(dir, 'scripts'), [workers[0].addr], ['--allow-scripts']))
    const result = await submit('on', ['--allow-scripts'])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(workers[1].output(), /runs job scripts/)

    const reference = join(dir, 'reference')
    await mkdir(reference)
    await execa(blender.path, ['-b', '--factory-startup', '-y', scene,
      '-o', join(reference, 'plain_####'), '-F', 'PNG', '-x', '1', '-f', '1,2'])
    await assertFramesMatchPlain(join(dir, 'on'), reference, [1, 2])
    // And the driver made a difference: without scripts the frame differs.
    assert.equal(await samePixels(join(dir, 'on', 'frame_0001.png'), join(dir, 'off', 'frame_0001.png')), false)
  })
})
