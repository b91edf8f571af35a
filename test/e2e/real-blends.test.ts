/**
 * End to end on real .blend files from other projects (../shared/blends):
 * an EEVEE farm example, packed textures with drivers, a multi-scene file
 * and a file saved by Blender 5.0.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { plainRender, SHARED_BLENDS } from '../fixtures/blender-scenes.js'
import { runCli, startCliWorker, stopWorkers, type RunningWorker } from '../helpers/cli.js'
import { assertFramesMatchPlain, frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

const skip = existsSync(SHARED_BLENDS)
  ? false
  : `the shared .blend files are not at ${SHARED_BLENDS}`

describe('real .blend files on a swarm', { timeout: 900_000, skip }, () => {
  let blender: BlenderInstall
  let dir: string
  let workers: RunningWorker[] = []

  before(async () => {
    blender = await findBlender()
    dir = await tempDir('blendnet-real-')
    const first = await startCliWorker(join(dir, 'w1'))
    workers = [first, await startCliWorker(join(dir, 'w2'), [first.addr])]
  })

  after(async () => {
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  })

  async function submit (file: string, args: string[]): Promise<{ code: number | undefined, out: string, output: string }> {
    const output = join(dir, `${file}-${args.join('_').replace(/\W/g, '')}`)
    const result = await runCli(['submit', join(SHARED_BLENDS, file), '--output', output,
      '--bootstrap', workers[0].addr, ...args])
    return { code: result.exitCode, out: `${result.stdout}\n${result.stderr}`, output }
  }

  async function assertSameAsLocal (file: string, output: string, frames: number[],
    scene: string[] = []): Promise<void> {
    const reference = join(output, '..', `${file}-reference-${scene.join('')}`)
    await mkdir(reference, { recursive: true })
    await plainRender(blender, join(SHARED_BLENDS, file), reference,
      ['-f', frames.join(',')], scene)
    await assertFramesMatchPlain(output, reference, frames, { label: `${file} ` })
  }

  it('cgru_farm_example.blend (EEVEE) frames 1-6 match local renders', async () => {
    const run = await submit('cgru_farm_example.blend', ['--frames', '1-6', '--chunk-size', '3'])
    assert.equal(run.code, 0, run.out)
    assert.equal((await frameFiles(run.output)).length, 6)
    await assertSameAsLocal('cgru_farm_example.blend', run.output, [1, 2, 3, 4, 5, 6])
  })

  it('vrm_packed_drivers.blend frames 1-3 keep their packed textures', async () => {
    const run = await submit('vrm_packed_drivers.blend', ['--frames', '1-3', '--chunk-size', '2'])
    assert.equal(run.code, 0, run.out)
    await assertSameAsLocal('vrm_packed_drivers.blend', run.output, [1, 2, 3])
  })

  it('armory_logic_scenes.blend renders the scene asked for with --scene Scene2', async () => {
    const run = await submit('armory_logic_scenes.blend', ['--scene', 'Scene2', '--frames', '1'])
    assert.equal(run.code, 0, run.out)
    assert.match(run.out, /scene "Scene2"/)
    await assertSameAsLocal('armory_logic_scenes.blend', run.output, [1], ['-S', 'Scene2'])
  })

  it('armory_logic_scenes.blend --scene Scene3 fails at once with Blender\'s "no camera"', async () => {
    const run = await submit('armory_logic_scenes.blend', ['--scene', 'Scene3', '--frames', '1-3'])
    assert.equal(run.code, 2, run.out)
    assert.match(run.out, /no camera/)
    assert.doesNotMatch(run.out, /granted claim/)
  })

  it('renderfarm_test_50.blend: the 3.4.1 swarm cannot read it, and submit says so within seconds', async () => {
    const started = Date.now()
    const run = await submit('renderfarm_test_50.blend', [])
    const seconds = (Date.now() - started) / 1000
    assert.equal(run.code, 1, run.out)
    // Scene and frames come from the file's REND blocks, not from Blender.
    assert.match(run.out, /scene "Scene ABC" of renderfarm_test_50\.blend, frames 1-90/)
    assert.match(run.out, /this machine's Blender 3\.4\.1 cannot read "renderfarm_test_50\.blend" \(saved by Blender 5\.0\)/)
    assert.match(run.out, /no worker can render this job \(needs Blender 5\.0, has 3\.4\.1\); the swarm offers 2 workers: Blender 3\.4\.1/)
    assert.ok(seconds < 30, `took ${seconds} s`)
    assert.deepEqual(await frameFiles(run.output), [])
  })
})
