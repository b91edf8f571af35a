/**
 * Blender's own Python is compiled once per user, not at every start:
 * reading a scene leaves its bytecode in the cache folder, even where
 * PYTHONDONTWRITEBYTECODE is set for the user's own Python.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { findBlender } from '../../src/blender/install.js'
import { inspectBlend } from '../../src/blender/scene-info.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { tempDir } from '../helpers/swarm.js'

describe('reading a scene with a bytecode cache', { timeout: 120_000 }, () => {
  let dir: string

  before(async () => {
    dir = await tempDir('blendnet-bytecode-')
    // Read once per process, at the first Blender run: this file's own.
    process.env.XDG_CACHE_HOME = join(dir, 'cache')
    process.env.PYTHONDONTWRITEBYTECODE = '1'
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('leaves Blender\'s compiled Python in the cache for the next start', async () => {
    const blender = await findBlender()
    const scene = join(dir, 'scene.blend')
    await makeDemoScene(blender, scene, { frames: 2, width: 32, height: 18, samples: 1 })
    const info = await inspectBlend(blender, scene)
    assert.ok(info.scenes.length > 0)

    const cache = join(dir, 'cache', 'blendnet', 'blender-bytecode')
    const files = await readdir(cache, { recursive: true })
    assert.ok(files.some(f => /bl_ui\/__init__\.cpython-\d+\.pyc$/.test(f)),
      `no bytecode of bl_ui among ${files.length} files in ${cache}`)
  })

  it('gets past a damaged file in it, which would stop every Blender start', async () => {
    const blender = await findBlender()
    const cache = join(dir, 'cache', 'blendnet', 'blender-bytecode')
    const files = await readdir(cache, { recursive: true })
    const uiInit = files.find(f => /bl_ui\/__init__\.cpython-\d+\.pyc$/.test(f))
    assert.ok(uiInit !== undefined, 'the test before filled the cache')
    // Its header (magic, flags, source time and size) still matches the
    // source, so Python trusts it; the code after it is garbage.
    const path = join(cache, uiInit)
    const bytes = await readFile(path)
    await writeFile(path, Buffer.concat([bytes.subarray(0, 16), Buffer.alloc(bytes.length - 16, 0xee)]))

    const info = await inspectBlend(blender, join(dir, 'scene.blend'))
    assert.ok(info.scenes.length > 0)
    assert.equal((await readFile(path)).subarray(16).every(b => b === 0xee), false, 'the damaged file is still there')

    // Cut short after its header instead: EOFError, not ValueError.
    const whole = await readFile(path)
    await writeFile(path, whole.subarray(0, 40))
    const again = await inspectBlend(blender, join(dir, 'scene.blend'))
    assert.ok(again.scenes.length > 0)
    assert.ok((await readFile(path)).length > 40, 'the cut file is still there')
  })
})
