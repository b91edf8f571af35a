/**
 * The chunk driver and inspectBlend against the real Blender, on the tiny
 * field-case scenes of test/fixtures/scenes/build_scenes.py (64x36,
 * 4 Cycles samples). "Right" means pixel-identical to a plain
 * `blender -b file.blend -f N` of the same frame.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { ProcessChunkRenderer } from '../../src/blender/driver.js'
import type { ChunkRenderRequest } from '../../src/blender/driver.js'
import {
  BlendUnreadableError, ChunkRenderError
} from '../../src/blender/errors.js'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { inspectBlend } from '../../src/blender/scene-info.js'
import { frameFileName, type ImageFormat } from '../../src/job/naming.js'
import {
  buildFixtures, plainRender, type FixtureScene, type Fixtures
} from '../fixtures/blender-scenes.js'
import { meanBrightness, readPixels, samePixels } from '../fixtures/pixels.js'

let blender: BlenderInstall
let fixtures: Fixtures
let renderer: ProcessChunkRenderer

before(async () => {
  blender = await findBlender()
  fixtures = await buildFixtures(blender)
  renderer = new ProcessChunkRenderer(blender)
})

after(async () => { await fixtures.remove() })

type Request = Omit<ChunkRenderRequest, 'blendPath' | 'chunkDir' | 'format'>
  & { format?: ImageFormat }

async function renderChunk (scene: FixtureScene, req: Request):
ReturnType<ProcessChunkRenderer['render']> {
  const chunkDir = join(await fixtures.tempDir(`${scene}-chunk`), 'frames')
  return await renderer.render({ blendPath: fixtures.blend(scene), chunkDir,
    format: 'PNG', ...req })
}

async function failure (promise: Promise<unknown>): Promise<ChunkRenderError> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof ChunkRenderError, `not a ChunkRenderError: ${err}`)
  return err
}

const names = (frames: Array<{ path: string }>): string[] =>
  frames.map(f => f.path.split('/').at(-1) as string)

describe('rendering a chunk with Blender', () => {
  it('renders exactly frames 3-5, pixel-identical to blender -f (B02)',
    async () => {
      const result = await renderChunk('moving',
        { scene: 'Scene', frames: [3, 4, 5] })
      const chunkDir = dirname(result.logPath)
      assert.deepEqual((await readdir(chunkDir)).sort(), ['blender.log',
        'frame_0003.png', 'frame_0004.png', 'frame_0005.png'])

      const plainDir = await fixtures.tempDir('moving-plain')
      const plain = await plainRender(blender, fixtures.blend('moving'),
        plainDir, ['-f', '3,4,5'])
      for (const [i, frame] of result.frames.entries()) {
        assert.ok(await samePixels(frame.path, join(plainDir, plain[i])),
          `frame ${frame.frame} differs from plain Blender's`)
      }
      assert.ok(!await samePixels(result.frames[0].path,
        result.frames[1].path), 'the frames of the animation differ')
    })

  it("writes into the chunk dir although the scene's own output points " +
    'elsewhere, and logs everything (B01)', async () => {
    const result = await renderChunk('moving', { scene: 'Scene', frames: [1] })
    const beside = await readdir(dirname(fixtures.blend('moving')))
    assert.ok(!beside.includes('elsewhere'), 'nothing at the scene path')
    assert.deepEqual(names(result.frames), ['frame_0001.png'])
    const log = await readFile(result.logPath, 'utf8')
    assert.match(log, /^Read blend: .*moving\.blend$/m)
    assert.match(log, /^Saved: '.*frames\/frame_0001\.png'$/m)
  })

  it('renders negative frames once each, named frame_-0005.png and ' +
    'equal to plain Blender at the same frames (B13)', async () => {
    const frames = [-5, -4, -1, 0, 1]
    const result = await renderChunk('negative', { scene: 'Scene', frames })
    assert.deepEqual(names(result.frames), ['frame_-0005.png',
      'frame_-0004.png', 'frame_-0001.png', 'frame_0000.png',
      'frame_0001.png'])
    const log = await readFile(result.logPath, 'utf8')
    assert.equal(log.match(/^Saved: /gm)?.length, 5, 'each frame saved once')

    // Plain Blender reaches negative frames only relative to the scene's
    // range -5..5: from start+0 to end-4 is -5..1.
    const plainDir = await fixtures.tempDir('negative-plain')
    await plainRender(blender, fixtures.blend('negative'), plainDir,
      ['-s', '+0', '-e', '-4', '-a'])
    for (const frame of result.frames) {
      const plain = join(plainDir, names([frame])[0].replace('frame_', 'plain_'))
      assert.ok(await samePixels(frame.path, plain), `frame ${frame.frame}`)
    }
    assert.ok(!await samePixels(result.frames[0].path, result.frames[4].path),
      'the cube is elsewhere at frame -5 than at frame 1')
  })

  it('renders the scene asked for, not the active one (B14)', async () => {
    const night = await renderChunk('multi', { scene: 'night', frames: [1] })
    const day = await renderChunk('multi', { scene: 'daylight', frames: [1] })
    const [dark, bright] = await Promise.all([
      meanBrightness(night.frames[0].path), meanBrightness(day.frames[0].path)])
    assert.ok(dark + 20 < bright, `night ${dark} is not darker than ${bright}`)
  })

  it('fails an unknown scene with a clear reason and no frames (B14)',
    async () => {
      const err = await failure(renderChunk('multi',
        { scene: 'Scene', frames: [1] }))
      assert.equal(err.reason,
        "the file has no scene named 'Scene' (Blender fell back to 'daylight')")
      assert.deepEqual(await readdir(dirname(err.logPath)), ['blender.log'])
    })

  it('handles spaces, &, # and non-ASCII in every path (B21)', async () => {
    const root = await fixtures.tempDir('odd')
    const blendPath = join(root, 'Projekt Ärger 日本', 'scène #1 & co.blend')
    await mkdir(dirname(blendPath))
    await copyFile(fixtures.blend('moving'), blendPath)
    const chunkDir = join(root, 'rendu #2 & ñandú', 'chunk 1')
    const result = await renderer.render({ blendPath, chunkDir,
      scene: 'Scene', frames: [2], format: 'PNG' })
    assert.equal(result.frames[0].path, join(chunkDir, 'frame_0002.png'))
    assert.equal((await readPixels(result.frames[0].path)).width, 64)
  })

  it('renders real frames with placeholders on and overwrite off (B26)',
    async () => {
      const result = await renderChunk('placeholders',
        { scene: 'Scene', frames: [1, 2] })
      for (const { path } of result.frames) {
        const pixels = await readPixels(path)
        assert.deepEqual([pixels.width, pixels.height], [64, 36])
      }
    })

  it('renders PNG frames from a scene set to a movie format (B28)',
    async () => {
      const info = await inspectBlend(blender, fixtures.blend('movie'))
      assert.equal(info.scenes[0].fileFormat, 'FFMPEG')
      assert.equal(info.scenes[0].isMovie, true)
      const result = await renderChunk('movie',
        { scene: 'Scene', frames: [1, 2] })
      assert.deepEqual(names(result.frames),
        ['frame_0001.png', 'frame_0002.png'])
      assert.equal((await readPixels(result.frames[1].path)).height, 36)
      const beside = await readdir(dirname(fixtures.blend('movie')))
      assert.ok(!beside.includes('out'), 'no movie at the scene path')
    })

  it('names frames frame_0001.png although the output path is empty (B29)',
    async () => {
      const result = await renderChunk('empty-output',
        { scene: 'Scene', frames: [1, 10] })
      const files = await readdir(dirname(result.logPath))
      assert.deepEqual(files.sort(),
        ['blender.log', 'frame_0001.png', 'frame_0010.png'])
    })

  it('writes every image format under the name blendnet predicts',
    async () => {
      const formats: ImageFormat[] = ['JPEG', 'TIFF', 'OPEN_EXR',
        'OPEN_EXR_MULTILAYER']
      for (const format of formats) {
        const result = await renderChunk('negative',
          { scene: 'Scene', frames: [-2, 3], format })
        assert.deepEqual(names(result.frames),
          [frameFileName(-2, format), frameFileName(3, format)])
      }
    })

  it('renders at the resolution percentage the request sets', async () => {
    const result = await renderChunk('moving',
      { scene: 'Scene', frames: [1], resolutionPercentage: 50 })
    const pixels = await readPixels(result.frames[0].path)
    assert.deepEqual([pixels.width, pixels.height], [32, 18])
  })

  it("fails a truncated file with Blender's reason and keeps no image (B07)",
    async () => {
      const err = await failure(renderChunk('truncated',
        { scene: 'Scene', frames: [1] }))
      assert.equal(err.reason, 'cannot read the .blend file: Missing DNA block')
      assert.equal(err.exitCode, 1)
      assert.deepEqual(await readdir(dirname(err.logPath)), ['blender.log'])
    })

  it("fails a scene without a camera with Blender's words", async () => {
    const err = await failure(renderChunk('no-camera',
      { scene: 'Scene', frames: [1] }))
    assert.equal(err.reason, 'Cannot render, no camera')
  })

  // The scene is the truth, whatever the job says: a job whose file the
  // submitting machine could not read carries no device nor denoiser.
  it('fails a denoised scene on a Blender without its denoiser (B19)', async () => {
    const err = await failure(renderChunk('denoised', { scene: 'Scene', frames: [1] }))
    assert.equal(err.reason, 'the scene denoises with OPENIMAGEDENOISE, which this Blender lacks')
    assert.deepEqual(await readdir(dirname(err.logPath)), ['blender.log'])
  })

  it('fails a compositor Denoise node on a Blender without a denoiser (B19)', async () => {
    const err = await failure(renderChunk('comp-denoise', { scene: 'Scene', frames: [1] }))
    assert.equal(err.reason, 'the scene denoises with OPENIMAGEDENOISE, which this Blender lacks')
  })

  it('fails a GPU scene on a CPU-only Blender instead of rendering on the CPU (B20)', async () => {
    const err = await failure(renderChunk('gpu', { scene: 'Scene', frames: [1] }))
    assert.equal(err.reason, 'the job needs a GPU and this Blender finds none')
  })

  it('renders a GPU scene on the CPU when the job says CPU', async () => {
    const result = await renderChunk('gpu', { scene: 'Scene', frames: [1], device: 'CPU' })
    assert.deepEqual(names(result.frames), ['frame_0001.png'])
  })
})

describe('reading the scenes of a .blend', () => {
  it('lists every scene of a file with none called Scene (B14)', async () => {
    const info = await inspectBlend(blender, fixtures.blend('multi'))
    assert.equal(info.activeScene, 'daylight')
    assert.deepEqual(info.scenes.map(s => s.name), ['daylight', 'night'])
    assert.equal(info.fileVersion, `${blender.major}.${blender.minor}`)
  })

  it('reports a negative frame start as stored (B13)', async () => {
    const [scene] = (await inspectBlend(blender, fixtures.blend('negative')))
      .scenes
    assert.deepEqual(
      [scene.frameStart, scene.frameEnd, scene.frameStep], [-5, 5, 1])
    assert.deepEqual([scene.width, scene.height, scene.engine, scene.hasCamera],
      [64, 36, 'CYCLES', true])
  })

  it('names the simulations that are not baked, and only those', async () => {
    const simulations = async (name: FixtureScene): Promise<string[]> =>
      (await inspectBlend(blender, fixtures.blend(name))).scenes[0].unbakedSimulations
    assert.deepEqual(await simulations('rigid-body'), ['rigid body world'])
    assert.deepEqual(await simulations('particles'), ["particles on 'Sphere'"])
    assert.deepEqual(await simulations('modifier'), [])
  })

  it('throws BlendUnreadableError naming the file and the cause (B07)',
    async () => {
      const path = fixtures.blend('truncated')
      await assert.rejects(inspectBlend(blender, path), (err: unknown) => {
        assert.ok(err instanceof BlendUnreadableError)
        assert.equal(err.message,
          `Blender ${blender.version} cannot read "${path}": Missing DNA block.`)
        return true
      })
    })
})
