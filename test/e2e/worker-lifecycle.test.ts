/**
 * Workers as processes: an ephemeral worker leaves when its job is done,
 * and a worker whose Blender crashes fails the job with the reason shown.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { runCli, startCliWorker, stopWorkers, type RunningWorker } from '../helpers/cli.js'
import { frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

async function until (condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('worker processes', { timeout: 300_000 }, () => {
  let dir: string
  let scene: string
  const started: RunningWorker[] = []

  before(async () => {
    dir = await tempDir('blendnet-lifecycle-')
    scene = join(dir, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: 4 })
  })

  after(async () => {
    await stopWorkers(started)
    await rm(dir, { recursive: true, force: true })
  })

  it('--once renders, then exits 0 and removes its work files once the job is done', async () => {
    const workDir = join(dir, 'once')
    const worker = await startCliWorker(workDir, [], ['--once'])
    started.push(worker)
    const result = await runCli(['submit', scene, '--frames', '1-4', '--chunk-size', '2',
      '--output', join(dir, 'once-out'), '--bootstrap', worker.addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)

    const exit = await worker.proc
    assert.equal(exit.exitCode, 0, worker.output())
    assert.match(worker.output(), /removed its work files/)
    assert.deepEqual((await readdir(workDir)).sort(), ['peer.key'])
  })

  it('a Blender that crashes on every chunk fails the job: exit 1, frames and reason named', async () => {
    const crashing = packagePath('test', 'fixtures', 'fake-blender', 'blender-healthy-then-segfaults')
    const worker = await startCliWorker(join(dir, 'crashing'), [], ['--blender', crashing])
    started.push(worker)
    const result = await runCli(['submit', scene, '--frames', '1-4', '--chunk-size', '2',
      '--output', join(dir, 'crash-out'), '--bootstrap', worker.addr], 120_000)
    assert.equal(result.exitCode, 1, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string, /job failed: 4 of 4 frames not rendered/)
    assert.match(result.stdout as string, /frames 1-2: .*SIGSEGV/)
    assert.match(result.stdout as string, /frames 3-4: .*SIGSEGV/)
    assert.deepEqual(await frameFiles(join(dir, 'crash-out')), [])
    // Blender's own words are kept next to the output for each failure.
    const logRoot = join(dir, 'crash-out', '.blendnet', 'logs')
    const [jobDir] = await readdir(logRoot)
    const logs = (await readdir(join(logRoot, jobDir))).sort()
    assert.ok(logs.length >= 2, `logs: ${logs.join(', ')}`)
    assert.ok(logs.every(name => /^chunk-000[01]_frames-(1-2|3-4)_failed_12D3KooW\w+_.*\.log$/.test(name)), logs.join(', '))
    assert.match(await readFile(join(logRoot, jobDir, logs[0]), 'utf8'), /Read blend: .*scene\.blend/)
  })

  it('a Blender that stops printing is stopped after --hang-timeout and its chunk fails as hung', async () => {
    const hanging = packagePath('test', 'fixtures', 'fake-blender', 'blender-healthy-then-hangs')
    const worker = await startCliWorker(join(dir, 'hanging'), [], ['--blender', hanging, '--hang-timeout', '2s'])
    started.push(worker)
    const submitted = Date.now()
    const result = await runCli(['submit', scene, '--frames', '1-2', '--chunk-size', '2',
      '--output', join(dir, 'hang-out'), '--bootstrap', worker.addr], 120_000)
    const seconds = (Date.now() - submitted) / 1000
    assert.equal(result.exitCode, 1, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string, /frames 1-2: Blender hung: no output for 2 s \(last line: "Fra:1 /)
    assert.match(worker.output(), /Blender hung, stopping it/)
    // Submit start-up, the claim and the 2 s of silence: far below a minute.
    assert.ok(seconds < 30, `took ${seconds} s`)
  })

  it('SIGTERM mid-render: the worker wipes its work dir, and another renders the chunk at once', async () => {
    const square = join(dir, 'square.blend')
    await makeDemoScene(await findBlender(), square, { frames: 2, width: 8, height: 8 })
    const hanging = packagePath('test', 'fixtures', 'fake-blender', 'blender-healthy-then-hangs')
    const busyDir = join(dir, 'busy')
    const busy = await startCliWorker(busyDir, [], ['--blender', hanging])
    started.push(busy)
    const submit = runCli(['submit', square, '--frames', '1-2', '--chunk-size', '2',
      '--output', join(dir, 'sigterm-out'), '--bootstrap', busy.addr], 120_000)
    await until(() => /claim granted/.test(busy.output()), 'the first worker to take the chunk')
    const good = await startCliWorker(join(dir, 'good'), [busy.addr],
      // The fake counts renders in a file of the test's: no sandbox.
      ['--blender', packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts'), '--sandbox', 'none'],
      { FAKE_BLENDER_COUNT_LOG: join(dir, 'good-count.log'), FAKE_BLENDER_FRAME_SIZE: '8' })
    started.push(good)
    // It joined through the busy worker: let it meet the coordinator first.
    await until(() => /found job/.test(good.output()), 'the second worker to see the job')

    const stoppedAt = Date.now()
    busy.proc.kill('SIGTERM')
    const exit = await busy.proc
    const stopSeconds = (Date.now() - stoppedAt) / 1000
    assert.equal(exit.exitCode, 0, `signal ${String(exit.signal)}\n${busy.output()}`)
    assert.match(busy.output(), /worker stopped \(SIGTERM\) and removed its work files/)
    assert.deepEqual((await readdir(busyDir)).filter(name => name !== 'peer.key'), [], 'nothing of the job left')

    const result = await submit
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string, /handed its chunk back \(stopping or restarted\); frames 1-2 are open again/)
    const seconds = (Date.now() - stoppedAt) / 1000
    // Far below the 30 s lease: the chunk came back with the release.
    assert.ok(seconds < 20, `the chunk was rendered ${seconds} s after SIGTERM (the worker took ${stopSeconds} s to stop)\n${good.output()}`)
    assert.deepEqual(await frameFiles(join(dir, 'sigterm-out')), ['frame_0001.png', 'frame_0002.png'])
  })

  it('a worker whose Blender cannot start says why, exits, and the job completes on the others', async () => {
    const broken = packagePath('test', 'fixtures', 'fake-blender', 'blender-cannot-start')
    const refused = await runCli(['worker', '--listen', '/ip4/127.0.0.1/tcp/0',
      '--work-dir', join(dir, 'broken'), '--blender', broken], 60_000)
    assert.equal(refused.exitCode, 2)
    assert.match(refused.stderr as string, /cannot start: .*shared librar/)

    const healthy = await startCliWorker(join(dir, 'healthy'))
    started.push(healthy)
    const result = await runCli(['submit', scene, '--frames', '1-4', '--output', join(dir, 'healthy-out'),
      '--bootstrap', healthy.addr])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
  })
})
