/**
 * End to end: three `blendnet worker` processes and one `blendnet submit`
 * render a generated animated scene with the real Blender, and every frame
 * matches a local `blender -b` render of it pixel for pixel.
 */
import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { frameFileName } from '../../src/job/naming.js'
import { plainRender } from '../fixtures/blender-scenes.js'
import { runCli, startCliWorker, stopWorkers, type RunningWorker } from '../helpers/cli.js'
import { assertFramesMatchPlain, frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

const FRAMES = Array.from({ length: 24 }, (_, i) => i + 1)

describe('rendering on a swarm of blendnet processes', { timeout: 600_000 }, () => {
  let blender: BlenderInstall
  let dir: string
  let reference: string
  let workers: RunningWorker[] = []

  before(async () => {
    blender = await findBlender()
    dir = await tempDir('blendnet-e2e-')
    await makeDemoScene(blender, join(dir, 'scene.blend'), { frames: 24, width: 64, height: 36, samples: 4 })
    reference = join(dir, 'reference')
    await mkdir(reference)
    await plainRender(blender, join(dir, 'scene.blend'), reference, ['-f', '1..24'])
    const first = await startCliWorker(join(dir, 'worker 1'))
    workers = [first,
      await startCliWorker(join(dir, 'worker 2'), [first.addr]),
      await startCliWorker(join(dir, 'worker 3'), [first.addr])]
  })

  after(async () => {
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  })

  async function assertMatchesReference (outputDir: string): Promise<void> {
    const files = await frameFiles(outputDir)
    assert.deepEqual(files, FRAMES.map(f => frameFileName(f, 'PNG')))
    await assertFramesMatchPlain(outputDir, reference, FRAMES, { size: { width: 64, height: 36 } })
  }

  it('renders 24 frames in chunks of 4, each once, identical to a local render', async () => {
    const output = join(dir, 'renders')
    const result = await runCli(['submit', join(dir, 'scene.blend'), '--frames', '1-24',
      '--chunk-size', '4', '--output', output, '--bootstrap', workers[0].addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string, /done: 24 frames/)
    await assertMatchesReference(output)
    const granted = (result.stderr as string).split('\n').filter(line => line.includes('granted claim'))
    assert.equal(granted.length, 6, `six chunks, each granted once (copies at the end are logged apart):\n${granted.join('\n')}`)
    const logRoot = join(output, '.blendnet', 'logs')
    const [jobDir] = await readdir(logRoot)
    const logs = await readdir(join(logRoot, jobDir))
    // A chunk copied at the end has a log from each worker that delivered.
    const logged = new Set(logs.filter(name => name.includes('_ok_')).map(name => name.slice(0, 'chunk-0000'.length)))
    assert.equal(logged.size, 6, `a Blender log for every chunk: ${logs.join(', ')}\n${result.stderr as string}\n${workers.map(w => w.output()).join('\n----\n')}`)
    assert.equal(logs.filter(name => name.includes('_failed_')).length, 0, logs.join(', '))
    // The worker the submitter dialled started Blender as it connected.
    const texts = await Promise.all(logs.map(async name => await readFile(join(logRoot, jobDir, name), 'utf8')))
    assert.ok(texts.some(text => text.includes('blendnet: standby Blender ready')), 'a chunk rendered in a standby Blender')
  })

  it('does the same with spaces, symbols and non-ASCII in the scene and output paths', async () => {
    const oddDir = join(dir, 'Projekt Ärger 日本')
    await mkdir(oddDir)
    const scene = join(oddDir, 'scène #1 & co.blend')
    await makeDemoScene(blender, scene, { frames: 24, width: 64, height: 36, samples: 4 })
    const output = join(dir, 'rendus finaux', 'ñandú & "quotes"')
    const result = await runCli(['submit', scene, '--frames', '1-24', '--chunk-size', '4',
      '--output', output, '--bootstrap', workers[0].addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    await assertMatchesReference(output)
  })

  it('renders with the job\'s own samples and resolution, like Blender with those settings', async () => {
    const output = join(dir, 'overrides')
    const result = await runCli(['submit', join(dir, 'scene.blend'), '--frames', '5-6',
      '--samples', '2', '--resolution', '50', '--output', output, '--bootstrap', workers[0].addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    const plain = join(dir, 'overrides-reference')
    await mkdir(plain)
    await plainRender(blender, join(dir, 'scene.blend'), plain, ['-f', '5,6'], ['--python-expr',
      'import bpy; s = bpy.context.scene; s.cycles.samples = 2; s.render.resolution_percentage = 50'])
    await assertFramesMatchPlain(output, plain, [5, 6], { size: { width: 32, height: 18 } })
  })

  it('a file newer than the submitting machine\'s Blender renders on workers that read it, identical', async () => {
    const output = join(dir, 'newer-file')
    const olderBlender = packagePath('test', 'fixtures', 'fake-blender', 'blender-older-than-its-files')
    const result = await runCli(['submit', join(dir, 'scene.blend'), '--chunk-size', '8',
      '--blender', olderBlender, '--output', output, '--bootstrap', workers[0].addr])
    const out = `${result.stdout}\n${result.stderr}`
    assert.equal(result.exitCode, 0, out)
    // Frames from the file's REND block; size set by the first frame.
    assert.match(out, /frames 1-24 \(24 frames in 3 chunks\), PNG \(size as the scene says\)/)
    assert.match(out, /this machine's Blender 3\.0\.0 cannot read "scene\.blend" \(saved by Blender 3\.4\)/)
    await assertMatchesReference(output)
  })

  it('a GPU job on CPU-only workers ends with what is missing, not a render', async () => {
    const output = join(dir, 'gpu')
    const result = await runCli(['submit', join(dir, 'scene.blend'), '--frames', '1-2',
      '--device', 'GPU', '--output', output, '--bootstrap', workers[0].addr], 60_000)
    assert.equal(result.exitCode, 1)
    assert.match(result.stdout as string, /no worker can render this job \(needs a GPU .*has none\); the swarm offers 3 workers: Blender 3\.4\.1/)
    assert.deepEqual(await frameFiles(output), [])
  })

  it('a denoised scene on workers without a denoiser ends with what is missing, not a noisy render (B19)', async () => {
    const scene = join(dir, 'denoised.blend')
    await execa(blender.path, ['-b', '--factory-startup', join(dir, 'scene.blend'), '--python-expr',
      `import bpy; bpy.context.scene.cycles.use_denoising = True; bpy.ops.wm.save_as_mainfile(filepath=${JSON.stringify(scene)})`])
    const output = join(dir, 'denoised')
    const result = await runCli(['submit', scene, '--frames', '1-2', '--output', output,
      '--bootstrap', workers[0].addr], 60_000)
    assert.equal(result.exitCode, 1, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string, /no worker can render this job \(needs denoiser OPENIMAGEDENOISE, has none\); the swarm offers 3 workers: Blender 3\.4\.1/)
    assert.deepEqual(await frameFiles(output), [])
  })

  it('renders negative frames, named with the sign before the padding', async () => {
    const output = join(dir, 'negative')
    const result = await runCli(['submit', join(dir, 'scene.blend'), '--frames', '-3-2',
      '--chunk-size', '2', '--output', output, '--bootstrap', workers[0].addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    assert.deepEqual(await frameFiles(output), ['frame_-0001.png', 'frame_-0002.png',
      'frame_-0003.png', 'frame_0000.png', 'frame_0001.png', 'frame_0002.png'])
    await assertFramesMatchPlain(output, reference, [1])
  })
})
