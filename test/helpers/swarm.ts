/**
 * Real libp2p nodes on 127.0.0.1 in this process: a coordinator for a job
 * and workers that join through it, for protocol tests.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'node:test'
import type { ChunkRenderer } from '../../src/blender/driver.js'
import { Coordinator, type CoordinatorOptions } from '../../src/coordinator/coordinator.js'
import type { JobEvent } from '../../src/coordinator/events.js'
import { meetWorkersAhead } from '../../src/coordinator/meet-workers.js'
import { OutputFolder } from '../../src/coordinator/output.js'
import { splitIntoChunks } from '../../src/job/frames.js'
import { buildManifest } from '../../src/job/manifest.js'
import type { JobSpec } from '../../src/job/spec.js'
import { hashFile } from '../../src/net/fetch.js'
import { newPeerKey } from '../../src/net/identity.js'
import { createSwarmNode, type SwarmNode } from '../../src/net/node.js'
import { WorkDir } from '../../src/worker/work-dir.js'
import { cpuWorker } from './capabilities.js'
import { Worker, type WorkerOptions } from '../../src/worker/worker.js'

export const WIDTH = 16
export const HEIGHT = 9

export async function tempDir (prefix = 'blendnet-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

export async function startNode (bootstrap: string[] = []): Promise<SwarmNode> {
  return createSwarmNode({
    privateKey: await newPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false
  })
}

/**
 * A node as `submit` starts it: known as a coordinator, taking claim
 * channels, on the jobs topic. `beforeDesk` sees the node first (a
 * benchmark's probes).
 */
export async function startCoordinatorNode (beforeDesk?: (node: SwarmNode) => void): Promise<SwarmNode> {
  const node = await createSwarmNode({
    privateKey: await newPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, coordinator: true
  })
  beforeDesk?.(node)
  await meetWorkersAhead(node)
  return node
}

export function addrOf (node: SwarmNode): string {
  return node.getMultiaddrs()[0].toString()
}

export interface TestJob {
  coordinator: Coordinator
  node: SwarmNode
  outputDir: string
  events: JobEvent[]
  spec: JobSpec
}

/**
 * A coordinator for `frames` of a made-up scene file of `sceneBytes`, or
 * of the file `scene` (jobs of one file have the same manifest).
 */
export async function startJob (frames: number[], chunkSize: number,
  opts: Partial<CoordinatorOptions> & { sceneBytes?: number, scene?: string } = {}): Promise<TestJob> {
  const dir = await tempDir()
  const blendPath = opts.scene ?? join(dir, 'scene.blend')
  if (opts.scene === undefined) await writeFile(blendPath, randomBytes(opts.sceneBytes ?? 4096))
  const sceneBytes = (await stat(blendPath)).size
  const built = await buildManifest(blendPath, [])
  const spec: JobSpec = {
    jobId: randomBytes(8).toString('hex'),
    blend: { path: blendPath, sha256: await hashFile(blendPath), size: sceneBytes, name: 'scene.blend' },
    manifest: { bytes: built.bytes, sha256: createHash('sha256').update(built.bytes).digest() },
    files: built.manifest.files,
    settings: { scene: 'Scene', format: 'PNG', width: WIDTH, height: HEIGHT, engine: '', samples: 0, resolutionPercentage: 0, device: '' },
    requirements: { minBlender: '3.4', engine: 'CYCLES', device: 'CPU', jobBytes: sceneBytes },
    chunks: splitIntoChunks(frames, chunkSize)
  }
  const node = opts.node ?? await startCoordinatorNode()
  const outputDir = join(dir, 'renders')
  const { mkdir } = await import('node:fs/promises')
  await mkdir(outputDir)
  const events: JobEvent[] = []
  const coordinator = new Coordinator({
    node, job: spec, output: new OutputFolder(outputDir, { format: 'PNG', width: WIDTH, height: HEIGHT }),
    onEvent: (e) => { events.push(e) }, ...opts
  })
  return { coordinator, node, outputDir, events, spec }
}

export interface TestWorker {
  worker: Worker
  node: SwarmNode
  workDir: WorkDir
}

export async function startWorker (renderer: ChunkRenderer, bootstrap: string[],
  capabilities = cpuWorker(), extra: Partial<WorkerOptions> = {}): Promise<TestWorker> {
  const key = extra.key ?? await newPeerKey()
  const node = await createSwarmNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false })
  const workDir = await WorkDir.open(await tempDir('blendnet-worker-'))
  const worker = new Worker({ node, key, renderer, capabilities, workDir, ...extra })
  await worker.start()
  return { worker, node, workDir }
}

export async function stopAll (...nodes: Array<{ stop: () => Promise<void> | void }>): Promise<void> {
  await Promise.all(nodes.map(async n => { await n.stop() }))
}

/**
 * startJob and startWorker as `withJob` and `withWorker`, whose jobs and
 * workers are stopped after each test of the file that calls this.
 */
export function stoppedAfterEach (): { withJob: typeof startJob, withWorker: typeof startWorker } {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.()
  })
  return {
    withJob: async (...args) => {
      const job = await startJob(...args)
      cleanups.push(async () => { job.coordinator.cancel('test over'); await job.node.stop() })
      return job
    },
    withWorker: async (...args) => {
      const w = await startWorker(...args)
      cleanups.push(async () => { await stopAll(w.worker, w.node) })
      return w
    }
  }
}

/** Polls until `condition` holds, failing after `timeoutMs`. */
export async function waitFor (condition: () => boolean, what: string,
  timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
