/**
 * The Blender driver on real .blend files from other projects
 * (shared/blends/README.md), read through `../shared/blends` from the
 * repository root. Skipped, with a message, where that folder is absent.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProcessChunkRenderer } from '../../src/blender/driver.js'
import {
  BlendUnreadableError, ChunkRenderError
} from '../../src/blender/errors.js'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { inspectBlend } from '../../src/blender/scene-info.js'
import { plainRender, SHARED_BLENDS } from '../fixtures/blender-scenes.js'
import { samePixels } from '../fixtures/pixels.js'

const skip = existsSync(SHARED_BLENDS)
  ? false
  : `no shared .blend files at ${SHARED_BLENDS}`

/** Renders at 25%: EEVEE takes ~3 s a frame at 1280x720 on two cores. */
const PREVIEW_PERCENT = 25

let blender: BlenderInstall
let dir: string

const shared = (name: string): string => join(SHARED_BLENDS, name)

describe('real .blend files from other projects', { skip }, () => {
  before(async () => {
    blender = await findBlender()
    dir = await mkdtemp(join(tmpdir(), 'blendnet-shared-'))
  })

  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('lists the three scenes of armory_logic_scenes.blend, Scene3 ' +
    'without a camera', async () => {
    const info = await inspectBlend(blender,
      shared('armory_logic_scenes.blend'))
    assert.deepEqual(info.scenes.map(s => [s.name, s.engine, s.hasCamera]), [
      ['Scene1', 'BLENDER_EEVEE', true],
      ['Scene2', 'CYCLES', true],
      ['Scene3', 'CYCLES', false]
    ])
    assert.equal(info.fileVersion, '2.93')
  })

  it('fails a chunk of Scene3 with "Cannot render, no camera"', async () => {
    const renderer = new ProcessChunkRenderer(blender)
    const err = await renderer.render({
      blendPath: shared('armory_logic_scenes.blend'), scene: 'Scene3',
      frames: [1], format: 'PNG', chunkDir: join(dir, 'scene3')
    }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof ChunkRenderError)
    assert.equal(err.reason, 'Cannot render, no camera')
  })

  it('refuses the Blender 5.0 file with BlendUnreadableError', async () => {
    await assert.rejects(
      inspectBlend(blender, shared('renderfarm_test_50.blend')),
      (err: unknown) => {
        assert.ok(err instanceof BlendUnreadableError)
        assert.equal(err.reason, 'not a blend file')
        assert.match(err.message, /renderfarm_test_50\.blend": not a blend/)
        return true
      })
  })

  it('renders EEVEE frames 1-2 of cgru_farm_example.blend pixel-identical ' +
    'to plain Blender', async () => {
    const blendPath = shared('cgru_farm_example.blend')
    const renderer = new ProcessChunkRenderer(blender)
    const result = await renderer.render({ blendPath, scene: 'Scene',
      frames: [1, 2], format: 'PNG', chunkDir: join(dir, 'cgru'),
      resolutionPercentage: PREVIEW_PERCENT })

    const plainDir = join(dir, 'cgru-plain')
    const setPercent = 'import bpy; bpy.context.scene.render' +
      `.resolution_percentage = ${PREVIEW_PERCENT}`
    await plainRender(blender, blendPath, plainDir, ['-f', '1,2'],
      ['--python-expr', setPercent])
    assert.deepEqual((await readdir(plainDir)).sort(),
      ['plain_0001.png', 'plain_0002.png'])
    assert.ok(await samePixels(result.frames[0].path,
      join(plainDir, 'plain_0001.png')), 'frame 1')
    assert.ok(await samePixels(result.frames[1].path,
      join(plainDir, 'plain_0002.png')), 'frame 2')
  })
})
