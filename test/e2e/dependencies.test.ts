/**
 * A scene that is not one file: textures beside it and elsewhere on disk,
 * an image sequence, a library that links another, a baked cache, a font.
 * Workers render it without seeing the artist's folders (their Blender
 * runs in a mount namespace where those folders are empty), and a second
 * job that shares files fetches only what is new.
 */
import assert from 'node:assert/strict'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { plainRender } from '../fixtures/blender-scenes.js'
import { runCli, startCliWorker, stopWorkers, type RunningWorker } from '../helpers/cli.js'
import { assertFramesMatchPlain, frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

const skip = process.getuid?.() === 0
  ? false
  : 'hiding the artist\'s folders from Blender needs root (mount namespaces)'

const WITHOUT_ARTIST_FILES = packagePath('test', 'fixtures', 'fake-blender', 'blender-without-artist-files')

/** `job files ready job=… files=N fetched=BYTES` lines of a worker's log. */
function fetchedBytes (log: string, jobLine: RegExp): number[] {
  return log.split('\n').filter(l => /job files ready/.test(l) && jobLine.test(l))
    .map(l => Number(/fetched=(\d+)/.exec(l)?.[1]))
}

describe('a scene with external files, rendered without a shared filesystem', { timeout: 600_000, skip }, () => {
  let blender: BlenderInstall
  let dir: string
  let project: string
  let elsewhere: string
  const workers: RunningWorker[] = []

  before(async () => {
    blender = await findBlender()
    dir = await tempDir('blendnet-deps-')
    // The artist's folders live outside the test's temp dir, so hiding
    // them hides nothing the workers need.
    project = await mkdtemp('/tmp/blendnet-artist-project-')
    elsewhere = await mkdtemp('/tmp/blendnet-artist-elsewhere-')
    await execa(blender.path, ['-b', '--factory-startup', '--python-exit-code', '1', '-P',
      packagePath('test', 'fixtures', 'scenes', 'build_dep_scenes.py'), '--', project, elsewhere])
  })

  after(async () => {
    await stopWorkers(workers)
    for (const d of [dir, project, elsewhere]) await rm(d, { recursive: true, force: true })
  })

  async function hiddenWorker (name: string, bootstrap: string[] = []): Promise<RunningWorker> {
    // The fake mounts over the artist's folders itself, which needs the
    // privileges Blender's sandbox takes away.
    const worker = await startCliWorker(join(dir, name), bootstrap,
      ['--blender', WITHOUT_ARTIST_FILES, '--sandbox', 'none'], { BLENDNET_TEST_HIDE: `${project}:${elsewhere}` })
    workers.push(worker)
    return worker
  }

  it('renders frames pixel-identical to a local render, on workers that cannot see the originals', async () => {
    const first = await hiddenWorker('w1')
    await hiddenWorker('w2', [first.addr])
    const output = join(dir, 'renders')
    const result = await runCli(['submit', join(project, 'scene.blend'), '--frames', '1-3',
      '--chunk-size', '1', '--output', output, '--bootstrap', first.addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)

    const reference = join(dir, 'reference')
    await mkdir(reference)
    await plainRender(blender, join(project, 'scene.blend'), reference, ['-f', '1,2,3'])
    await assertFramesMatchPlain(output, reference, [1, 2, 3])
  })

  it('submit refuses a scene whose texture is missing, naming the path', async () => {
    const result = await runCli(['submit', join(project, 'settings.blend'), '--frames', '1',
      '--output', join(dir, 'never')])
    assert.equal(result.exitCode, 2)
    assert.match(result.stderr as string, /needs a file that is not on this machine: .*\.png.*--allow-missing/)
  })

  it('submit tells the user about File Output nodes it cannot bring back', async () => {
    const result = await runCli(['submit', join(project, 'settings.blend'), '--frames', '1',
      '--allow-missing', '--output', join(dir, 'never')])
    assert.equal(result.exitCode, 2)
    assert.match(result.stderr as string, /File Output nodes \(Masks\)/)
  })

  it('--allow-missing renders without the missing texture, as Blender does locally', async () => {
    const scene = join(dir, 'lost-texture.blend')
    const lost = join(dir, 'gone', 'lost.png')
    await execa(blender.path, ['-b', '--factory-startup', join(project, 'scene.blend'), '--python-exit-code', '1', '--python-expr',
      'import bpy; m = bpy.data.materials.new("Lost"); m.use_nodes = True; ' +
      'i = bpy.data.images.new("lost", 4, 4); i.source = "FILE"; ' + `i.filepath = ${JSON.stringify(lost)}; ` +
      't = m.node_tree.nodes.new("ShaderNodeTexImage"); t.image = i; ' +
      'm.node_tree.links.new(t.outputs[0], m.node_tree.nodes["Principled BSDF"].inputs[0]); ' +
      'bpy.data.objects["Ground"].data.materials.clear(); bpy.data.objects["Ground"].data.materials.append(m); ' +
      `bpy.ops.wm.save_as_mainfile(filepath=${JSON.stringify(scene)})`])
    const output = join(dir, 'allowed')
    const result = await runCli(['submit', scene, '--frames', '1-2', '--allow-missing', '--output', output,
      '--bootstrap', workers[0].addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string, /note: rendering without \d+ missing files \(--allow-missing\): .*lost\.png/)
    const reference = join(dir, 'allowed-reference')
    await mkdir(reference)
    await plainRender(blender, scene, reference, ['-f', '1,2'])
    await assertFramesMatchPlain(output, reference, [1, 2])
    const logs = join(output, '.blendnet', 'logs')
    const [job] = await readdir(logs)
    const text = await Promise.all((await readdir(join(logs, job))).map(async f => await readFile(join(logs, job, f), 'utf8')))
    assert.match(text.join('\n'), /blendnet: rendering without missing files: image ".*lost\.png" is missing/)
  })

  it('a second job sharing files fetches only the new ones', async () => {
    // Alone in its own swarm, so that it renders both jobs.
    const worker = await hiddenWorker('alone')
    const first = await runCli(['submit', join(project, 'scene.blend'), '--frames', '1',
      '--output', join(dir, 'job1'), '--bootstrap', worker.addr])
    assert.equal(first.exitCode, 0, first.stderr as string)

    // The same shot saved under another name, with its baked cache beside it.
    const shot2 = join(project, 'shot2.blend')
    await execa(blender.path, ['-b', '--factory-startup', join(project, 'scene.blend'), '--python-expr',
      `import bpy; bpy.ops.wm.save_as_mainfile(filepath=${JSON.stringify(shot2)}, copy=True)`])
    await cp(join(project, 'blendcache_scene'), join(project, 'blendcache_shot2'), { recursive: true })
    const second = await runCli(['submit', shot2, '--frames', '1',
      '--output', join(dir, 'job2'), '--bootstrap', worker.addr])
    assert.equal(second.exitCode, 0, second.stderr as string)
    assert.deepEqual(await frameFiles(join(dir, 'job2')), ['frame_0001.png'])

    const jobId = (out: string): string => /^job (\w+):/m.exec(out)?.[1] ?? 'none'
    const log = worker.output()
    const [firstFetch] = fetchedBytes(log, new RegExp(`job=${jobId(first.stdout as string)}`))
    const [secondFetch] = fetchedBytes(log, new RegExp(`job=${jobId(second.stdout as string)}`))
    assert.ok(firstFetch > (await stat(shot2)).size, `first job fetched ${firstFetch} bytes`)
    assert.equal(secondFetch, (await stat(shot2)).size, 'only the new .blend was fetched')
  })
})
