/**
 * The files a scene needs from outside its .blend, against the real
 * Blender, on the scenes of test/fixtures/scenes/build_dep_scenes.py:
 * the scan lists each kind with its files, and a worker that moved them
 * all renders the same pixels through a path map, while a chunk whose
 * files are missing fails naming one instead of rendering magenta (B09).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm
} from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { packagePath } from '../../src/common/paths.js'
import {
  planJobLayout, type Dependency, type JobLayout, type PathMap
} from '../../src/blender/dependencies.js'
import { ProcessChunkRenderer } from '../../src/blender/driver.js'
import { ChunkRenderError } from '../../src/blender/errors.js'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { inspectBlend, type BlendInfo } from '../../src/blender/scene-info.js'
import { plainRender } from '../fixtures/blender-scenes.js'
import { samePixels } from '../fixtures/pixels.js'

let blender: BlenderInstall
let root: string
let project: string
let elsewhere: string

before(async () => {
  blender = await findBlender()
  root = await mkdtemp(join(tmpdir(), 'blendnet-deps-'))
  project = join(root, 'artist project')
  elsewhere = join(root, 'artist elsewhere')
  const script = packagePath('test', 'fixtures', 'scenes',
    'build_dep_scenes.py')
  await execa(blender.path, ['-b', '--factory-startup',
    '--python-exit-code', '1', '-P', script, '--', project, elsewhere])
})

after(async () => { await rm(root, { recursive: true, force: true }) })

/** [kind, stored, files] of each dependency, for deepEqual. */
function summary (deps: Dependency[]): Array<[string, string, string[]]> {
  return deps.map(d => [d.kind, d.stored, d.files])
}

describe('listing what a scene reads from outside its .blend', () => {
  it('finds textures, a sequence, nested libraries, a point cache, a ' +
    'font and a sound, each with its files', async () => {
    const info = await inspectBlend(blender, join(project, 'scene.blend'))
    const p = (...parts: string[]): string => join(project, ...parts)
    const e = (...parts: string[]): string => join(elsewhere, ...parts)
    const cache = p('blendcache_scene', '456D6974746572_00000')
    assert.deepEqual(summary(info.dependencies), [
      ['font', '//fonts/mono.woff2', [p('fonts', 'mono.woff2')]],
      ['image', e('marble.png'), [e('marble.png')]],
      // Relative to lib_b.blend, the library it comes from.
      ['image', '//tex/cone.png', [e('shared', 'tex', 'cone.png')]],
      ['image', '//textures/wood.png', [p('textures', 'wood.png')]],
      ['image-sequence', e('seq', 'glow_0001.png'),
        [1, 2, 3].map(n => e('seq', `glow_000${n}.png`))],
      ['library', e('libs', 'lib_a.blend'), [e('libs', 'lib_a.blend')]],
      // Linked by lib_a only: Blender loads it all the same.
      ['library', e('shared', 'lib_b.blend'), [e('shared', 'lib_b.blend')]],
      ['point-cache', '//blendcache_scene/',
        [1, 2, 3].map(n => `${cache}${n}_00.bphys`)],
      ['sound', '//sounds/beep.wav', [p('sounds', 'beep.wav')]]
    ])
    assert.ok(info.dependencies.every(d => d.exists))
    assert.deepEqual(info.missing, [])
    assert.deepEqual(info.packed, [])
  })

  it('finds a fluid replay cache, a .vdb sequence and a Mesh Cache file',
    async () => {
      const info = await inspectBlend(blender, join(project, 'caches.blend'))
      const e = (...parts: string[]): string => join(elsewhere, ...parts)
      const frames = (name: string): string[] => [1, 2, 3].map(n =>
        e('fluid_cache', name === 'config' ? 'config' : 'data',
          `${name}_000${n}.${name === 'config' ? 'uni' : 'vdb'}`))
      assert.deepEqual(summary(info.dependencies), [
        ['fluid-cache', e('fluid_cache'),
          [...frames('config'), ...frames('fluid_data')]],
        ['mesh-cache', e('wobble.pc2'), [e('wobble.pc2')]],
        ['volume', e('fluid_cache', 'data', 'fluid_data_0001.vdb'),
          frames('fluid_data')]
      ])
      assert.deepEqual(info.dependencies.map(d => d.users),
        [['Domain'], ['Sphere'], ['Puff']])
    })

  it('names the datablocks using each file', async () => {
    const info = await inspectBlend(blender, join(project, 'scene.blend'))
    const users = Object.fromEntries(info.dependencies.map(d =>
      [d.absolute.split('/').at(-1), d.users]))
    assert.deepEqual(users['marble.png'], ['Marble'])
    assert.deepEqual(users['blendcache_scene'], ['Emitter'])
    assert.ok(users['lib_b.blend'].includes('B_Cone'))
  })

  it('reports a texture missing on this machine, and packed ones apart',
    async () => {
      const info = await inspectBlend(blender,
        join(project, 'settings.blend'))
      const lost = '/nonexistent/artist/Textures/lost.png'
      assert.deepEqual(info.missing, [{ kind: 'image', stored: lost,
        absolute: lost, exists: false, files: [lost], users: ['Lost'] }])
      assert.deepEqual(info.dependencies, info.missing)
      assert.deepEqual(info.packed, ['inside'])
    })

  it('reports view layers, device, samples, denoising, File Output ' +
    'nodes and Python for each scene', async () => {
    const info = await inspectBlend(blender, join(project, 'settings.blend'))
    const [eevee, scene] = info.scenes
    assert.deepEqual(
      [scene.viewLayers, scene.device, scene.samples, scene.denoising],
      [['Beauty', 'Mattes'], 'GPU', 7, true])
    assert.equal(scene.denoiser, 'OPENIMAGEDENOISE')
    assert.deepEqual(scene.fileOutputNodes, ['Masks'])
    assert.deepEqual(scene.usesPython, [
      "driver Cube.location[1]: __import__('math').sin(frame)",
      'registered script rig_ui.py'])
    assert.deepEqual(
      [eevee.name, eevee.samples, eevee.denoising, eevee.denoiser],
      ['Eevee', 16, false, null])
    assert.deepEqual(eevee.usesPython, ['registered script rig_ui.py'])
  })

  it('does not count a particle system baked to disk as unbaked', async () => {
    const info = await inspectBlend(blender, join(project, 'scene.blend'))
    assert.deepEqual(info.scenes.map(s => s.unbakedSimulations), [[]])
  })
})

describe('an artist on Windows (B09)', () => {
  // As Blender holds it: setting it turned the backslashes on Linux.
  const stored = 'C:/Users/artist/Textures/wood.png'
  const windowsBlend = (): string => join(project, 'windows.blend')

  async function renderWindows (chunk: string, pathMap?: PathMap):
  ReturnType<ProcessChunkRenderer['render']> {
    return await new ProcessChunkRenderer(blender).render({
      blendPath: windowsBlend(), scene: 'Scene', frames: [2],
      format: 'PNG', pathMap, chunkDir: join(root, chunk) })
  }

  it('renders the texture from where the map puts its folder, written ' +
    'in either case and with either separator', async () => {
    const textures = join(project, 'textures')
    const result = await renderWindows('windows chunk',
      { 'c:\\users\\artist\\textures': textures })

    const plainDir = join(root, 'windows plain')
    const fix = 'import bpy; bpy.data.images["wood_win"].filepath = ' +
      JSON.stringify(join(textures, 'wood.png'))
    const [plain] = await plainRender(blender, windowsBlend(), plainDir,
      ['-f', '2'], ['--python-expr', fix])
    assert.ok(await samePixels(result.frames[0].path, join(plainDir, plain)))
  })

  it('fails naming the Windows path when nothing maps it', async () => {
    const err = await renderWindows('windows chunk, no map')
      .then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof ChunkRenderError)
    assert.equal(err.reason, `image "${stored}" is missing, used by WinWood`)
  })
})

/** The job dir a worker would build, with the artist's files hidden. */
interface MovedJob {
  info: BlendInfo
  layout: JobLayout
  /** Frames 2 and 3 rendered by plain Blender from the artist's files. */
  plain: string[]
}

async function buildJob (
  blend: string, jobDir: string, info: BlendInfo, skip = (_: string) => false
): Promise<JobLayout> {
  const layout = planJobLayout(blend, info.dependencies, jobDir)
  for (const { from, to } of layout.copies) {
    if (skip(from)) continue
    await mkdir(dirname(to), { recursive: true })
    await copyFile(from, to)
  }
  return layout
}

let hidden = false

async function hideArtistFiles (): Promise<void> {
  await rename(project, `${project} (gone)`)
  await rename(elsewhere, `${elsewhere} (gone)`)
  hidden = true
}

async function restoreArtistFiles (): Promise<void> {
  if (!hidden) return
  await rename(`${project} (gone)`, project)
  await rename(`${elsewhere} (gone)`, elsewhere)
  hidden = false
}

describe('rendering on a worker that moved every file', () => {
  let job: MovedJob
  let noCache: JobLayout
  let font: MovedJob
  let caches: MovedJob

  before(async () => {
    job = await movedJob('scene.blend', 'job')
    noCache = await buildJob(join(project, 'scene.blend'),
      join(root, 'job without cache'), job.info,
      from => from.includes('blendcache_scene'))
    font = await movedJob('font.blend', 'font job')
    caches = await movedJob('caches.blend', 'caches job')
    await hideArtistFiles()
  })

  after(restoreArtistFiles)

  async function movedJob (name: string, dir: string): Promise<MovedJob> {
    const blend = join(project, name)
    const info = await inspectBlend(blender, blend)
    const plainDir = join(root, `${dir} plain`)
    const plain = await plainRender(blender, blend, plainDir, ['-f', '2,3'])
    const layout = await buildJob(blend, join(root, dir), info)
    return { info, layout, plain: plain.map(n => join(plainDir, n)) }
  }

  async function render (layout: JobLayout, chunk: string, pathMap?: PathMap):
  ReturnType<ProcessChunkRenderer['render']> {
    return await new ProcessChunkRenderer(blender).render({
      blendPath: layout.blendPath, scene: 'Scene', frames: [2, 3],
      format: 'PNG', pathMap, chunkDir: join(root, chunk) })
  }

  async function failure (promise: Promise<unknown>):
  Promise<ChunkRenderError> {
    const err = await promise.then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof ChunkRenderError, `not a chunk failure: ${err}`)
    assert.deepEqual(await readdir(dirname(err.logPath)), ['blender.log'])
    return err
  }

  async function assertSamePixels (
    frames: Array<{ path: string }>, plain: string[]
  ): Promise<void> {
    assert.equal(frames.length, plain.length)
    for (const [i, frame] of frames.entries()) {
      assert.ok(await samePixels(frame.path, plain[i]), frame.path)
    }
  }

  it('renders frames pixel-identical to plain Blender on the artist\'s ' +
    'files, libraries reloaded from their new place', async () => {
    const result = await render(job.layout, 'chunk', job.layout.pathMap)
    await assertSamePixels(result.frames, job.plain)

    // lib_a.blend links lib_b.blend by the artist's absolute path, so
    // lib_b is reloaded after lib_a, from where lib_a's reload left it.
    const log = await readFile(result.logPath, 'utf8')
    const moved = (name: string): string => `blendnet: library ` +
      `"${join(elsewhere, name)}" reloaded from "${join(root, 'job',
        'blendnet-external', elsewhere, name)}"`
    assert.ok(log.includes(moved('libs/lib_a.blend')), 'lib_a reloaded')
    assert.ok(log.includes(moved('shared/lib_b.blend')), 'lib_b reloaded')
  })

  it('needs one entry for a moved folder and none for paths relative to ' +
    'the .blend', async () => {
    const external = join(root, 'job', 'blendnet-external', elsewhere)
    const result = await render(job.layout, 'chunk, one entry',
      { [elsewhere]: external })
    await assertSamePixels(result.frames, job.plain)
  })

  it('fails without the path map, naming a missing file, instead of ' +
    'rendering magenta (B09)', async () => {
    const err = await failure(render(job.layout, 'chunk, no map'))
    const e = (...parts: string[]): string => join(elsewhere, ...parts)
    assert.equal(err.reason, `image "${e('marble.png')}" is missing, ` +
      `used by Marble; also missing: "${e('seq', 'glow_0001.png')}", ` +
      `"${e('libs', 'lib_a.blend')}"`)
  })

  it('fails naming the point cache a worker left out', async () => {
    const err = await failure(render(noCache, 'chunk, no cache',
      noCache.pathMap))
    assert.equal(err.reason, 'point-cache ' +
      `"${join(root, 'job without cache', 'blendcache_scene')}" is missing ` +
      '(stored as "//blendcache_scene/"), used by Emitter')
  })

  it('renders a smoke cache, a volume sequence and a Mesh Cache from ' +
    'their new folder', async () => {
    const result = await render(caches.layout, 'caches chunk',
      caches.layout.pathMap)
    await assertSamePixels(result.frames, caches.plain)
  })

  it('renders a font moved from its absolute path', async () => {
    const result = await render(font.layout, 'font chunk',
      font.layout.pathMap)
    await assertSamePixels(result.frames, font.plain)
  })
})
