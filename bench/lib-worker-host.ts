/**
 * A child process of the swarm benchmarks (lib-swarm.ts) holding some of
 * a job's workers: real libp2p nodes and Workers whose "Blender" sleeps
 * per frame by the worker's speed. Driven over IPC: `start` → `ready`,
 * `stop` → `report`. Claims are timed here, in the workers' own process.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ChunkRenderer, ChunkRenderRequest, ChunkRenderResult } from '../src/blender/driver.js'
import { messageOf } from '../src/common/errors.js'
import { JOBS_TOPIC } from '../src/common/constants.js'
import { frameFileName } from '../src/job/naming.js'
import type { SwarmNode } from '../src/net/node.js'
import { decodeSwarmMessage } from '../src/net/wire.js'
import { CoordinatorClient } from '../src/worker/coordinator-client.js'
import { pngBytes } from '../test/helpers/fake-renderers.js'
import { HEIGHT, startWorker, stopAll, WIDTH, type TestWorker } from '../test/helpers/swarm.js'
import { cpuMs, watchEventLoop, type HostCommand, type HostReply, type WorkerReport } from './lib-swarm.js'

/** Every frame is the same valid image: the coordinator checks only its kind and size. */
const PNG = pngBytes(WIDTH, HEIGHT, 128)

/** A Blender that takes `ms` a frame, then writes it and says so. */
class SleepsPerFrame implements ChunkRenderer {
  constructor (private readonly report: WorkerReport, private readonly ms: number) {}

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    await mkdir(req.chunkDir, { recursive: true })
    const logPath = join(req.chunkDir, 'blender.log')
    await writeFile(logPath, '')
    const frames = []
    for (const frame of req.frames) {
      const started = performance.now()
      await sleep(this.ms, undefined, { signal: req.signal })
      this.report.busyMs += performance.now() - started

      const path = join(req.chunkDir, frameFileName(frame, req.format))
      await writeFile(path, PNG)
      req.onFrameSaved?.(frame, path)
      frames.push({ frame, path })
      this.report.frames++
    }
    return { frames, logPath, warnings: [] }
  }
}

interface Hosted { test: TestWorker, report: WorkerReport, announcedAt?: number }

const hosted = new Map<string, Hosted>()
let loop: ReturnType<typeof watchEventLoop> | undefined
/** This process's CPU from the first announcement until every worker here had a grant. */
const rush: { since?: NodeJS.CpuUsage, ms?: number } = {}

/**
 * Every claim a worker makes goes through CoordinatorClient.claim: timed
 * around it, from the decision to claim to the reply, without touching
 * src/. The client's node is private; read here only to tell workers apart.
 */
const claim = CoordinatorClient.prototype.claim
CoordinatorClient.prototype.claim = async function (this: CoordinatorClient, ...args) {
  const started = performance.now()
  const reply = await claim.apply(this, args)
  const now = performance.now()
  const node = (this as unknown as { node: SwarmNode }).node
  const worker = hosted.get(node.peerId.toString())
  if (worker !== undefined) {
    worker.report.claims.push({ ms: now - started, granted: reply.ok })
    if (reply.ok && worker.announcedAt !== undefined) {
      worker.report.firstGrantMs ??= now - worker.announcedAt
      if (rush.since !== undefined && [...hosted.values()].every(w => w.report.firstGrantMs !== undefined)) {
        rush.ms ??= cpuMs(process.cpuUsage(rush.since))
      }
    }
  }
  return reply
}

async function start (bootstrap: string, speeds: number[], frameMs: number): Promise<void> {
  for (const speed of speeds) {
    const report: WorkerReport = { peer: '', speed, frames: 0, busyMs: 0, claims: [] }
    const test = await startWorker(new SleepsPerFrame(report, frameMs / speed), [bootstrap])
    report.peer = test.node.peerId.toString()
    const worker: Hosted = { test, report }
    hosted.set(report.peer, worker)
    // After the Worker's own listener: it has seen the same announcement.
    test.node.services.pubsub.addEventListener('message', (evt) => {
      if (worker.announcedAt !== undefined || evt.detail.topic !== JOBS_TOPIC) return
      const message = decodeSwarmMessage(evt.detail.data)
      if (message === undefined || !('job' in message)) return
      worker.announcedAt = performance.now()
      rush.since ??= process.cpuUsage()
    })
  }
}

async function stop (): Promise<HostReply> {
  const loopDelay = loop?.stop() ?? { p50: NaN, p99: NaN, max: NaN }
  const workers = [...hosted.values()]
  await Promise.all(workers.map(async ({ test }) => {
    await stopAll(test.worker, test.node)
    await rm(test.workDir.root, { recursive: true, force: true })
  }))
  return { type: 'report', workers: workers.map(w => w.report), loopDelay, rushCpuMs: rush.ms }
}

function reply (message: HostReply): void {
  process.send?.(message)
}

process.on('message', (command: HostCommand) => {
  const work = command.type === 'start'
    ? start(command.bootstrap, command.speeds, command.frameMs).then(() => {
      loop = watchEventLoop()
      reply({ type: 'ready' })
    })
    : stop().then((report) => { process.send?.(report, () => { process.exit(0) }) })
  work.catch((err: unknown) => {
    reply({ type: 'error', message: messageOf(err) })
    process.exitCode = 1
  })
})
