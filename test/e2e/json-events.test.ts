/**
 * `submit --json` as a script reads it: every stdout line is one JSON
 * event, from job-started to job-finished, with one frame-done per frame;
 * the human lines go to stderr. A reader that goes away ends no job.
 */
import assert from 'node:assert/strict'
import { readdir, rm } from 'node:fs/promises'
import { execa } from 'execa'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { findBlender } from '../../src/blender/install.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { CLI, runCli, startCliWorker, stopWorkers, TEST_ENV, type RunningWorker } from '../helpers/cli.js'
import { tempDir } from '../helpers/swarm.js'

interface JsonEvent { event: string, time: string, [field: string]: unknown }

describe('submit --json', { timeout: 300_000 }, () => {
  let dir: string
  let scene: string
  const workers: RunningWorker[] = []

  before(async () => {
    dir = await tempDir('blendnet-json-')
    scene = join(dir, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: 4 })
  })

  after(async () => {
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  })

  it('writes one JSON event per line on stdout, from job-started to job-finished', async () => {
    const worker = await startCliWorker(join(dir, 'worker'))
    workers.push(worker)
    const result = await runCli(['submit', scene, '--frames', '1-4', '--chunk-size', '2',
      '--output', join(dir, 'renders'), '--bootstrap', worker.addr, '--json'])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)

    const lines = (result.stdout as string).split('\n').filter(line => line !== '')
    const events = lines.map(line => JSON.parse(line) as JsonEvent)
    for (const e of events) {
      assert.equal(typeof e.event, 'string')
      assert.ok(!Number.isNaN(Date.parse(e.time)), `time of ${JSON.stringify(e)}`)
    }
    const started = events[0]
    assert.equal(started.event, 'job-started')
    assert.deepEqual(started.frames, [1, 2, 3, 4])
    assert.equal(started.chunks, 2)
    assert.deepEqual(started.alreadyDone, [])
    const finished = events.at(-1) as JsonEvent
    assert.equal(finished.event, 'job-finished')
    assert.equal(finished.succeeded, true)
    assert.equal(finished.done, 4)

    const done = events.filter(e => e.event === 'frame-done')
    assert.deepEqual(done.map(e => e.frame).sort(), [1, 2, 3, 4])
    assert.deepEqual(done.map(e => e.done), [1, 2, 3, 4])
    assert.ok(done.every(e => e.worker === worker.addr.split('/p2p/')[1] && e.total === 4))
    assert.ok(events.some(e => e.event === 'worker-joined' && e.blender === '3.4.1'), lines.join('\n'))
    assert.equal(events.filter(e => e.event === 'chunk-granted').length, 2)

    // The human lines are still there, on stderr.
    assert.match(result.stderr as string, /^job \w+: scene "Scene"/m)
    assert.match(result.stderr as string, /^done: 4 frames in /m)
  })

  it('a rerun with every frame there still says job-started and job-finished', async () => {
    const result = await runCli(['submit', scene, '--frames', '1-4', '--chunk-size', '2',
      '--output', join(dir, 'renders'), '--json', '--worker-wait', '10s'])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    const events = (result.stdout as string).trim().split('\n').map(line => JSON.parse(line) as JsonEvent)
    assert.deepEqual(events.map(e => e.event), ['job-started', 'job-finished'])
    assert.deepEqual(events[0].alreadyDone, [1, 2, 3, 4])
    assert.equal(events[1].alreadyThere, 4)
  })

  it('a reader of its output that goes away (`| head`, a closed terminal) does not end the job', async () => {
    const worker = await startCliWorker(join(dir, 'worker-2'))
    workers.push(worker)
    const output = join(dir, 'renders-unread')
    const proc = execa(process.execPath, [CLI, 'submit', scene, '--frames', '1-4', '--output', output,
      '--bootstrap', worker.addr], { env: TEST_ENV, reject: false, buffer: false })
    // Both pipes closed before its first line: every write fails (EPIPE).
    proc.stdout?.destroy()
    proc.stderr?.destroy()
    const result = await proc
    assert.equal(result.exitCode, 0)
    assert.deepEqual((await readdir(output)).filter(f => f.endsWith('.png')).sort(),
      ['frame_0001.png', 'frame_0002.png', 'frame_0003.png', 'frame_0004.png'])
  })

  it('a --dashboard-port that is not a port is a usage error', async () => {
    const result = await runCli(['submit', scene, '--output', join(dir, 'x'), '--dashboard-port', '70000'])
    assert.equal(result.exitCode, 2)
    assert.equal(result.stderr, 'blendnet: --dashboard-port must be a port number from 0 to 65535, not "70000"')
  })
})
