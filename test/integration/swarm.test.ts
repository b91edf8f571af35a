/**
 * The protocol between real libp2p nodes on 127.0.0.1: a coordinator and
 * workers in this process, with stand-ins for Blender.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RESULT_PROTOCOL } from '../../src/common/constants.js'
import { chunkLogDir } from '../../src/coordinator/log-handler.js'
import { newPeerKey } from '../../src/net/identity.js'
import { verifyImage } from '../../src/image/verify.js'
import { DeliversOneFrameThenHangs, FailsEveryChunk, HangsUntilAborted, RendersFramesOneByOne, RendersSolidPngs, TampersWithItsScene } from '../helpers/fake-renderers.js'
import { cpuWorker } from '../helpers/capabilities.js'
import { frameFiles } from '../helpers/frames.js'
import { addrOf, HEIGHT, stoppedAfterEach, waitFor, WIDTH, type TestJob, type TestWorker } from '../helpers/swarm.js'

const { withJob, withWorker } = stoppedAfterEach()

/** A worker whose Blender hangs, once it has taken a chunk of the job. */
async function withHungWorker (job: TestJob): Promise<TestWorker> {
  const hung = new HangsUntilAborted()
  const w = await withWorker(hung, [addrOf(job.node)])
  await waitFor(() => hung.started > 0, 'the hung worker to take a chunk')
  return w
}

describe('swarm protocol', { timeout: 120_000 }, () => {
  it('renders every frame exactly once across workers, negative frames included', async () => {
    const frames = [-3, -2, -1, 0, 1, 2, 3, 4, 5, 6]
    const job = await withJob(frames, 2)
    const run = job.coordinator.run()
    const renderers = [new RendersSolidPngs(WIDTH, HEIGHT), new RendersSolidPngs(WIDTH, HEIGHT)]
    for (const r of renderers) await withWorker(r, [addrOf(job.node)])

    const outcome = await run
    assert.equal(outcome.succeeded, true)
    // A frame may be rendered twice where a speculative copy met its
    // holder; it is written once.
    assert.deepEqual([...new Set(renderers.flatMap(r => r.rendered))].sort((a, b) => a - b), frames)
    const files = await frameFiles(job.outputDir)
    assert.deepEqual(files, ['frame_-0001.png', 'frame_-0002.png', 'frame_-0003.png',
      'frame_0000.png', 'frame_0001.png', 'frame_0002.png', 'frame_0003.png',
      'frame_0004.png', 'frame_0005.png', 'frame_0006.png'])
    for (const file of files) {
      const check = verifyImage(await readFile(join(job.outputDir, file)), { format: 'PNG', width: WIDTH, height: HEIGHT })
      assert.equal(check.ok, true, file)
    }
  })

  it('a worker that joins through another worker, after the job started, gets work, and copies a stuck chunk', async () => {
    const job = await withJob([1, 2, 3, 4, 5, 6, 7, 8], 1)
    const run = job.coordinator.run()
    const slow = new HangsUntilAborted()
    const first = await withWorker(slow, [addrOf(job.node)])
    await waitFor(() => slow.started > 0, 'the first worker to take a chunk')

    // The late worker knows only the first worker, not the coordinator.
    const late = new RendersSolidPngs(WIDTH, HEIGHT)
    await withWorker(late, [addrOf(first.node)])
    // Frames 2-8 first; then, nothing being open, a copy of the chunk the
    // first worker is stuck on.
    const outcome = await run
    assert.equal(outcome.succeeded, true)
    assert.deepEqual(late.rendered.sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8])
    const grants = job.events.flatMap(e => e.type === 'chunk-granted' ? [e] : [])
    const stuck = grants.find(e => e.worker === first.node.peerId.toString())?.frames
    const copies = grants.filter(e => e.speculative === true)
    assert.deepEqual(copies.map(e => e.frames), [stuck])
  })

  it('a chunk that fails on every worker fails the job with Blender\'s reason, without endless retries', async () => {
    const job = await withJob([1, 2, 3], 4)
    const run = job.coordinator.run()
    const failing = [new FailsEveryChunk(), new FailsEveryChunk()]
    for (const r of failing) await withWorker(r, [addrOf(job.node)])

    const outcome = await run
    assert.equal(outcome.succeeded, false)
    assert.deepEqual(outcome.failedFrames, [1, 2, 3].map(frame => ({ frame, reason: 'Cannot render, no camera' })))
    assert.ok(failing.every(r => r.calls <= 1), 'each worker tried the chunk at most once')
    assert.deepEqual(await frameFiles(job.outputDir), [])
  })

  it('a frame upload cut by a dropped connection is retried, not failed', async () => {
    const job = await withJob([1, 2, 3, 4], 4)
    // The first two uploads lose their connection mid-stream.
    let cut = 0
    const handle = job.node.handle.bind(job.node)
    job.node.handle = async (protocol, handler, opts) => {
      if (protocol !== RESULT_PROTOCOL || typeof handler !== 'function') return handle(protocol, handler, opts)
      return handle(protocol, (stream, connection) => {
        if (cut < 2) {
          cut++
          void connection.close()
          return
        }
        return handler(stream, connection)
      }, opts)
    }
    const run = job.coordinator.run()
    const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
    await withWorker(renderer, [addrOf(job.node)])

    const outcome = await run
    assert.equal(outcome.succeeded, true)
    assert.equal(cut, 2)
    assert.deepEqual(renderer.rendered, [1, 2, 3, 4], 'rendered once: the frames were kept and sent again')
    assert.equal(job.events.filter(e => e.type === 'chunk-failed').length, 0)
    assert.equal((await frameFiles(job.outputDir)).length, 4)
  })

  it('a worker that fails 3 chunks stops taking the job; the others finish it', async () => {
    const job = await withJob([1, 2, 3, 4, 5, 6, 7, 8], 1)
    const run = job.coordinator.run()
    // The good worker is slow, so the broken one gets to fail three times.
    const good = new RendersSolidPngs(WIDTH, HEIGHT, 300)
    await withWorker(good, [addrOf(job.node)])
    const broken = new FailsEveryChunk()
    const bad = await withWorker(broken, [addrOf(job.node)])

    const outcome = await run
    assert.equal(outcome.succeeded, true)
    assert.equal(broken.calls, 3, 'no chunk after the third failure')
    const failures = job.events.filter(e => e.type === 'chunk-failed')
    assert.equal(failures.length, 3)
    assert.ok(failures.every(e => e.type === 'chunk-failed' && e.worker === bad.node.peerId.toString()))
    assert.equal(good.rendered.length, 8)
  })

  it('a job whose only workers all failed 3 chunks ends, naming why', async () => {
    const job = await withJob([1, 2, 3, 4, 5, 6], 1)
    const run = job.coordinator.run()
    await withWorker(new FailsEveryChunk(), [addrOf(job.node)])

    const outcome = await run
    assert.equal(outcome.succeeded, false)
    const reasons = outcome.failedFrames.map(f => f.reason).sort()
    assert.deepEqual(reasons, [
      ...Array(3).fill('Cannot render, no camera'),
      ...Array(3).fill('no eligible worker left: every worker present failed 3 chunks of this job')
    ])
  })

  it('a worker not on the coordinator\'s allow-list has its claims refused; an allowed one renders', async () => {
    const allowed = new Set<string>()
    const job = await withJob([1, 2, 3, 4], 1, { allowedWorkers: allowed })
    const run = job.coordinator.run()
    const outsider = new RendersSolidPngs(WIDTH, HEIGHT)
    await withWorker(outsider, [addrOf(job.node)])
    await waitFor(() => job.events.some(e => e.type === 'message-rejected' && e.reason.startsWith('worker-not-allowed')),
      'the outsider\'s claim to be refused')
    const member = new RendersSolidPngs(WIDTH, HEIGHT)
    const memberKey = await newPeerKey()
    allowed.add(peerIdFromPrivateKey(memberKey).toString())
    await withWorker(member, [addrOf(job.node)], cpuWorker(), { key: memberKey })

    const outcome = await run
    assert.equal(outcome.succeeded, true)
    assert.deepEqual(outsider.rendered, [])
    assert.deepEqual(member.rendered.sort(), [1, 2, 3, 4])
    // Refused for good: the outsider asked once, not at every announcement.
    assert.equal(outcome.rejected['worker-not-allowed'], 1)
  })

  it('a worker gives no claims to a coordinator not on its allow-list', async () => {
    const job = await withJob([1, 2], 1)
    const run = job.coordinator.run()
    const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
    const friend = peerIdFromPrivateKey(await newPeerKey()).toString()
    await withWorker(renderer, [addrOf(job.node)], cpuWorker(), { allowedCoordinators: new Set([friend]) })
    // The worker says whose jobs it takes: the job ends, naming why,
    // instead of waiting for it.
    const outcome = await run
    assert.deepEqual(renderer.rendered, [])
    assert.equal(job.events.filter(e => e.type === 'chunk-granted').length, 0)
    assert.equal(outcome.done, 0)
    const joined = job.events.find(e => e.type === 'worker-joined')
    assert.deepEqual(joined?.type === 'worker-joined' && joined.unmet, ['takes jobs only from other submitters (its --allow-coordinator list)'])
    assert.match(outcome.failedFrames[0].reason, /^no worker can render this job \(takes jobs only from other submitters/)
  })

  it('a worker whose job file was changed under it hands its chunk back and stops', async () => {
    const job = await withJob([1, 2, 3, 4], 2)
    const run = job.coordinator.run()
    const tamperer = new TampersWithItsScene(WIDTH, HEIGHT)
    const bad = await withWorker(tamperer, [addrOf(job.node)])
    await bad.worker.done
    assert.match(bad.worker.fatal?.message ?? '', /job file .*scene\.blend no longer matches its SHA-256/)
    assert.equal(tamperer.calls, 1, 'no render after the change was found')
    const released = job.events.filter(e => e.type === 'chunk-released')
    assert.equal(released.length, 1, 'the chunk it held went back at once')

    await withWorker(new RendersSolidPngs(WIDTH, HEIGHT), [addrOf(job.node)])
    assert.equal((await run).succeeded, true)
  })

  it('a job larger than a worker takes is not downloaded; submit says why', async () => {
    const job = await withJob([1, 2], 2, { sceneBytes: 256 * 1024 })
    const run = job.coordinator.run()
    const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
    const w = await withWorker(renderer, [addrOf(job.node)], cpuWorker(), { maxJobBytes: 100 * 1024 })

    const outcome = await run
    assert.equal(outcome.succeeded, false)
    assert.match(outcome.failedFrames[0].reason,
      /^no worker can render this job \(needs 256 KiB for its files, has room for 100 KiB \(free disk space, or the worker's --max-job-size\)\)/)
    assert.deepEqual(renderer.rendered, [])
    assert.deepEqual(await readdir(join(w.workDir.root, 'blobs')), [], 'nothing downloaded')
  })

  it('frames travel while the next ones render; the last waits for the chunk\'s end', async () => {
    const doneAt = new Map<number, number>()
    const job = await withJob([1, 2, 3, 4], 4, {
      onEvent: (e) => { if (e.type === 'frame-done') doneAt.set(e.frame, Date.now()) }
    })
    const run = job.coordinator.run()
    const renderer = new RendersFramesOneByOne(WIDTH, HEIGHT, 400)
    await withWorker(renderer, [addrOf(job.node)])
    assert.equal((await run).succeeded, true)
    const finished = renderer.finishedAt[0]
    for (const frame of [1, 2, 3]) {
      assert.ok((doneAt.get(frame) ?? Infinity) < finished, `frame ${frame} arrived before the chunk ended`)
    }
    assert.ok((doneAt.get(4) ?? 0) >= finished, 'the last frame came after the chunk ended')
  })

  it('a lapsed lease reopens the chunk for another worker', async () => {
    const job = await withJob([1, 2], 2, { leaseMs: 1500 })
    const run = job.coordinator.run()
    const first = await withHungWorker(job)
    // The hung worker falls silent: no renewals, as if its machine froze.
    await first.node.stop()

    const healthy = new RendersSolidPngs(WIDTH, HEIGHT)
    await withWorker(healthy, [addrOf(job.node)])
    const outcome = await run
    assert.equal(outcome.succeeded, true)
    assert.deepEqual(healthy.rendered, [1, 2])
    assert.ok(job.events.some(e => e.type === 'lease-expired'))
    await first.worker.stop()
  })

  it('a worker that is stopped hands its chunk back at once, not after the lease', async () => {
    const job = await withJob([1, 2], 2)
    const run = job.coordinator.run()
    const first = await withHungWorker(job)
    const stoppedAt = Date.now()
    await first.worker.stop()
    assert.ok(job.events.some(e => e.type === 'chunk-released'))

    const healthy = new RendersSolidPngs(WIDTH, HEIGHT)
    await withWorker(healthy, [addrOf(job.node)])
    const outcome = await run
    assert.equal(outcome.succeeded, true)
    assert.ok(Date.now() - stoppedAt < 15_000, 'well within the 30 s lease')
    assert.ok(!job.events.some(e => e.type === 'chunk-failed'), 'a release is not a failure')
  })

  it('a worker stopped mid-chunk sends the Blender log of the frames it delivered before it hands the chunk back', async () => {
    const job = await withJob([1, 2, 3], 3, { workerWaitMs: 60_000 })
    const run = job.coordinator.run()
    const first = await withWorker(new DeliversOneFrameThenHangs(WIDTH, HEIGHT), [addrOf(job.node)])
    await waitFor(() => job.events.some(e => e.type === 'frame-done' && e.frame === 1), 'frame 1 to be written')
    await first.worker.stop()
    assert.ok(job.events.some(e => e.type === 'chunk-released'))

    await withWorker(new RendersSolidPngs(WIDTH, HEIGHT), [addrOf(job.node)])
    assert.equal((await run).succeeded, true)
    const logDir = chunkLogDir(job.outputDir, job.spec.jobId)
    const peer = first.node.peerId.toString()
    const theirs = (await readdir(logDir)).filter(name => name.startsWith('chunk-0000_') && name.includes(peer))
    assert.equal(theirs.length, 1, `the stopped worker's log of chunk 0 in ${(await readdir(logDir)).join(', ')}`)
    assert.match(await readFile(join(logDir, theirs[0]), 'utf8'), /Saved: frame 1/)
  })

  it('a worker that stops says so: it is counted gone at once, not after 15 s of silence', async () => {
    const job = await withJob([1, 2], 1, { workerWaitMs: 60_000 })
    const run = job.coordinator.run()
    const first = await withHungWorker(job)
    const peer = first.node.peerId.toString()
    // As `blendnet worker` does on SIGTERM: the worker, then its node.
    await first.worker.stop()
    await first.node.stop()
    const left = (): boolean => job.events.some(e => e.type === 'worker-left' && e.worker === peer && e.stopped)
    await waitFor(left, 'the coordinator to count the stopped worker gone', 3000)

    await withWorker(new RendersSolidPngs(WIDTH, HEIGHT), [addrOf(job.node)])
    assert.equal((await run).succeeded, true)
  })

  it('a job whose every worker left says so when it gives up, not that none joined', async () => {
    const job = await withJob([1, 2], 2, { workerWaitMs: 1500 })
    const run = job.coordinator.run()
    const only = await withHungWorker(job)
    // As `blendnet worker` does on SIGTERM: the worker, then its node.
    await only.worker.stop()
    await only.node.stop()
    const outcome = await run
    assert.equal(outcome.succeeded, false)
    assert.match(outcome.failedFrames[0].reason, /^every worker left, and none came back in time/)
  })

  it('a worker whose Blender is older than the file does not claim; the job says so', async () => {
    const job = await withJob([1], 1, { workerWaitMs: 60_000 })
    const run = job.coordinator.run()
    const old = new RendersSolidPngs(WIDTH, HEIGHT)
    await withWorker(old, [addrOf(job.node)], cpuWorker('2.93.0'))
    const outcome = await run
    assert.equal(outcome.succeeded, false)
    assert.deepEqual(old.rendered, [])
    assert.match(outcome.failedFrames[0].reason,
      /^no worker can render this job \(needs Blender 3\.4, has 2\.93\.0\); the swarm offers 1 worker: Blender 2\.93\.0/)
  })

  it('a GPU job on CPU-only workers ends with "no worker can render this", not a render', async () => {
    const job = await withJob([1, 2], 1, {})
    job.spec.requirements = { minBlender: '3.4', engine: 'CYCLES', device: 'GPU' }
    const run = job.coordinator.run()
    const renderers = [new RendersSolidPngs(WIDTH, HEIGHT), new RendersSolidPngs(WIDTH, HEIGHT)]
    for (const r of renderers) await withWorker(r, [addrOf(job.node)])
    const outcome = await run
    assert.equal(outcome.succeeded, false)
    assert.match(outcome.failedFrames[0].reason, /no worker can render this job \(needs a GPU .*has none\); the swarm offers 2 workers/)
    assert.deepEqual(renderers.flatMap(r => r.rendered), [])
  })

  it('a denoised job on workers without a denoiser ends the same way', async () => {
    const job = await withJob([1], 1, {})
    job.spec.requirements = { minBlender: '3.4', engine: 'CYCLES', device: 'CPU', denoiser: 'OPENIMAGEDENOISE' }
    const run = job.coordinator.run()
    await withWorker(new RendersSolidPngs(WIDTH, HEIGHT), [addrOf(job.node)])
    const outcome = await run
    assert.match(outcome.failedFrames[0].reason, /needs denoiser OPENIMAGEDENOISE/)
  })

  it('an ephemeral worker leaves when its coordinator goes silent', async () => {
    const job = await withJob([1, 2], 1)
    const run = job.coordinator.run()
    const hung = new HangsUntilAborted()
    const w = await withWorker(hung, [addrOf(job.node)], cpuWorker(), { once: true, jobStaleMs: 2000 })
    await waitFor(() => hung.started > 0, 'the worker to take a chunk')
    // The submit's machine vanishes: no "job finished" ever comes.
    await job.node.stop()
    await w.worker.done
    assert.equal(hung.started, 1)
    job.coordinator.cancel('test over')
    await run
  })

  it('moves a 64 MiB scene to a worker, verified by hash', async () => {
    const job = await withJob([1], 1, { sceneBytes: 64 * 1024 * 1024 })
    const run = job.coordinator.run()
    const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
    const w = await withWorker(renderer, [addrOf(job.node)])
    assert.equal((await run).succeeded, true)
    const cached = await readdir(join(w.workDir.root, 'blobs'))
    assert.ok(cached.includes(Buffer.from(job.spec.blend.sha256).toString('hex')), cached.join(', '))
  })

  it('a scene saved again after submit, as Blender saves (a new file renamed over it), reaches workers as submitted', async () => {
    const job = await withJob([1, 2], 2, { sceneBytes: 3 * 1024 * 1024 })
    const run = job.coordinator.run()
    await waitFor(() => job.node.getProtocols().includes(RESULT_PROTOCOL), 'the coordinator to start')
    const saved = `${job.spec.blend.path}@`
    await writeFile(saved, 'the artist kept working')
    await rename(saved, job.spec.blend.path)
    const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
    const w = await withWorker(renderer, [addrOf(job.node)])
    assert.equal((await run).succeeded, true)
    const cached = await readdir(join(w.workDir.root, 'blobs'))
    assert.ok(cached.includes(Buffer.from(job.spec.blend.sha256).toString('hex')), cached.join(', '))
  })

  it('a scene written over in place after submit ends the job saying so, not blaming its frames', async () => {
    const job = await withJob([1, 2], 2, { sceneBytes: 3 * 1024 * 1024 })
    const run = job.coordinator.run()
    await waitFor(() => job.node.getProtocols().includes(RESULT_PROTOCOL), 'the coordinator to start')
    await writeFile(job.spec.blend.path, 'the artist copied another file onto it')
    const outcome = await run
    assert.equal(outcome.succeeded, false)
    assert.deepEqual(outcome.failedFrames.map(f => f.frame), [1, 2])
    for (const { reason } of outcome.failedFrames) {
      assert.match(reason, /^".*" was written over on this machine while the job ran, .*run the same command again/)
    }
  })
})
