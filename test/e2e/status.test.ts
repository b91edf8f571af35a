/**
 * `blendnet status` against `blendnet worker` processes (a fake Blender
 * that renders slowly): it lists both workers with their Blender version
 * and what they can render, idle, then busy on the job a submit gave
 * them; it says so when it reaches no peer, and it joins a private swarm
 * only with its key.
 */
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { CLI, runCli, startCliWorker, stopWorkers, TEST_ENV, type RunningWorker } from '../helpers/cli.js'
import { tempDir } from '../helpers/swarm.js'

const SIDE = 8
const FAKE_BLENDER = packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts')

interface StatusJson {
  connectedPeers: number
  workers: Array<{ peer: string, blenderVersion: string, engines: string[], state: string, job: string | null }>
  jobs: Array<{ id: string, framesTotal?: number, framesDone?: number }>
}

function peerOf (worker: RunningWorker): string {
  return /^blendnet worker (\w+)$/m.exec(worker.output())?.[1] ?? ''
}

/** A port nothing listens on: one the system just gave and took back. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

describe('blendnet status', { timeout: 300_000 }, () => {
  let dir: string
  let scene: string
  let workers: RunningWorker[] = []
  const env = (): Record<string, string> => ({
    FAKE_BLENDER_COUNT_LOG: join(dir, 'rendered.log'), FAKE_BLENDER_FRAME_SIZE: String(SIDE), FAKE_BLENDER_FRAME_SECONDS: '0.5'
  })
  const fake = ['--blender', FAKE_BLENDER, '--sandbox', 'none']

  before(async () => {
    dir = await tempDir('blendnet-status-')
    scene = join(dir, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: 60, width: SIDE, height: SIDE })
    const first = await startCliWorker(join(dir, 'worker 1'), [], fake, env())
    workers = [first, await startCliWorker(join(dir, 'worker 2'), [first.addr], fake, env())]
  })

  after(async () => {
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  })

  it('lists both workers with their Blender version and engines, idle', async () => {
    const result = await runCli(['status', '--bootstrap', workers[0].addr, '--min-workers', '2', '--wait', '60s'])
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}`)
    const out = String(result.stdout)
    assert.match(out, /^2 workers heard in [\d.]+s \(connected to 1 peer\)$/m)
    assert.match(out, /^PEER\s+BLENDER\s+CAN RENDER\s+STATE$/m)
    for (const worker of workers) {
      assert.match(out, new RegExp(`^${peerOf(worker)}\\s+3\\.4\\.1\\s+Cycles, EEVEE, Workbench; no GPU; no denoiser; \\d+ CPUs, [\\d.]+ GiB\\s+idle$`, 'm'))
    }

    const json = await runCli(['status', '--bootstrap', workers[0].addr, '--min-workers', '2', '--wait', '60s', '--json'])
    assert.equal(json.exitCode, 0, String(json.stderr))
    const seen = JSON.parse(String(json.stdout)) as StatusJson
    assert.deepEqual(seen.workers.map(w => w.peer).sort(), workers.map(peerOf).sort())
    for (const w of seen.workers) {
      assert.deepEqual([w.blenderVersion, w.engines, w.state, w.job], ['3.4.1', ['CYCLES', 'BLENDER_EEVEE', 'BLENDER_WORKBENCH'], 'idle', null])
    }
  })

  it('shows each busy worker with the job it renders', async () => {
    // Two chunks of 30 frames at 0.5 s a frame: both workers busy a while.
    const submit = execa(process.execPath, [CLI, 'submit', scene, '--frames', '1-60', '--chunk-size', '30',
      '--output', join(dir, 'renders'), '--bootstrap', workers[0].addr], { all: true, buffer: false, reject: false, env: TEST_ENV })
    let said = ''
    const bothGranted = new Promise<void>((resolve) => {
      submit.all?.on('data', (data: Buffer) => {
        said += data.toString()
        if ((said.match(/granted claim/g) ?? []).length >= 2) resolve()
      })
    })
    try {
      await Promise.race([bothGranted, submit.then(() => { throw new Error(`submit ended:\n${said}`) })])
      const jobId = /^job (\w+):/m.exec(said)?.[1]
      assert.ok(jobId !== undefined, said)

      const result = await runCli(['status', '--bootstrap', workers[0].addr, '--wait', '8s', '--json'])
      assert.equal(result.exitCode, 0, String(result.stderr))
      const seen = JSON.parse(String(result.stdout)) as StatusJson
      assert.deepEqual(seen.workers.map(w => [w.state, w.job]), [['busy', jobId], ['busy', jobId]])
      const job = seen.jobs.find(j => j.id === jobId)
      assert.equal(job?.framesTotal, 60)
      assert.ok(job.framesDone !== undefined && job.framesDone < 60, `${job.framesDone} frames done`)

      const text = await runCli(['status', '--bootstrap', workers[0].addr, '--wait', '4s'])
      assert.match(String(text.stdout), new RegExp(`^job ${jobId}: scene "Scene" from \\w+, \\d+ of 60 frames done, \\d+ open chunks?$`, 'm'))
    } finally {
      submit.kill('SIGINT')
      await submit
    }
  })

  it('says in one sentence, exit 1, that it reached no peer', async () => {
    const nowhere = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${peerOf(workers[0])}`
    const result = await runCli(['status', '--bootstrap', nowhere, '--wait', '2s'])
    assert.equal(result.exitCode, 1, `${result.stdout}\n${result.stderr}`)
    const said = String(result.stderr).split('\n').filter(line => line.startsWith('blendnet:'))
    assert.deepEqual(said, [`blendnet: status reached no peer through ${nowhere} in 2s; check that a worker runs there`])
    assert.doesNotMatch(String(result.stdout), /PEER/)
  })

  it('sees a private swarm\'s worker only with its swarm key', async () => {
    const key = join(dir, 'swarm.key')
    assert.equal((await runCli(['keygen', key])).exitCode, 0)
    const member = await startCliWorker(join(dir, 'worker private'), [], [...fake, '--swarm-key', key], env())
    try {
      const outsider = await runCli(['status', '--bootstrap', member.addr, '--wait', '3s'])
      assert.equal(outsider.exitCode, 1, String(outsider.stdout))
      assert.match(String(outsider.stderr), /^blendnet: status reached no peer through /m)

      const keyed = await runCli(['status', '--bootstrap', member.addr, '--swarm-key', key, '--min-workers', '1', '--wait', '60s', '--json'])
      assert.equal(keyed.exitCode, 0, String(keyed.stderr))
      assert.deepEqual((JSON.parse(String(keyed.stdout)) as StatusJson).workers.map(w => w.peer), [peerOf(member)])
    } finally {
      await stopWorkers([member])
    }
  })
})
