/**
 * Transfer: a large scene to many workers at once. How many bytes does
 * the coordinator upload, and how long until every worker holds the
 * scene? Workers share pieces, so the target (PRODUCT.md) is an upload of
 * at most twice the scene's size; raw TCP copying the same bytes once,
 * between two processes, is timed for scale.
 *
 *   scripts/node.sh dist/bench/transfer.js [--size 500MB] [--workers 8] [--hosts 2]
 *
 * Progress goes to stderr; the Markdown report goes to stdout.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { FETCH_PROTOCOL, JOBS_TOPIC, PIECES_PROTOCOL } from '../src/common/constants.js'
import { Coordinator } from '../src/coordinator/coordinator.js'
import { OutputFolder } from '../src/coordinator/output.js'
import { parseSize } from '../src/common/sizes.js'
import { buildManifest } from '../src/job/manifest.js'
import { countBytesSent } from '../test/helpers/bytes-sent.js'
import { writeRandomFile } from '../test/helpers/files.js'
import { addrOf, HEIGHT, startNode, tempDir, waitFor, WIDTH } from '../test/helpers/swarm.js'
import { ask } from './lib-ipc.js'
import { loadNow, machineLines, whole, wholeList } from './lib-swarm.js'
import type { TransferHostCommand, TransferHostReply, TransferWorkerReport } from './lib-transfer-host.js'

const MB = 1e6
/** Far past any healthy run: a hung transfer fails instead of never ending. */
const DEADLINE_MS = 20 * 60_000

export interface TransferRun { sizeBytes: number, workers: number, hosts: number }

export interface TransferResult {
  run: TransferRun
  /** Workers that reported the scene ready, of run.workers. */
  workersWithScene: number
  /** Payload bytes the coordinator sent on the fetch and pieces protocols. */
  coordinatorBytes: number
  /** Bytes the coordinator's process wrote (sockets, logs), from /proc. */
  coordinatorWrittenBytes?: number
  /** From the coordinator's start until the last worker held the scene. */
  allHaveSceneMs: number
  workers: TransferWorkerReport[]
}

/** Bytes this process has written, all files and sockets (Linux). */
async function writtenBytes (): Promise<number | undefined> {
  const io = await readFile('/proc/self/io', 'utf8').catch(() => undefined)
  const match = io === undefined ? null : /^wchar: (\d+)$/m.exec(io)
  return match === null ? undefined : Number(match[1])
}

export async function runTransfer (run: TransferRun, dir: string, scene: string): Promise<TransferResult> {
  const built = await buildManifest(scene, [])
  const file = built.manifest.files[0]
  const node = await startNode()
  const outputDir = join(dir, `renders-${run.workers}`)
  await mkdir(outputDir, { recursive: true })
  const coordinator = new Coordinator({
    node,
    job: {
      jobId: `transfer-${run.workers}-${Date.now()}`,
      blend: { path: scene, sha256: file.sha256, size: file.size, name: 'scene.blend' },
      manifest: { bytes: built.bytes, sha256: createHash('sha256').update(built.bytes).digest() },
      files: built.manifest.files,
      settings: { scene: 'Scene', format: 'PNG', width: WIDTH, height: HEIGHT, engine: '', samples: 0, resolutionPercentage: 0, device: '' },
      requirements: { minBlender: '3.4', engine: 'CYCLES', device: 'CPU', jobBytes: file.size },
      chunks: Array.from({ length: run.workers }, (_, i) => [i + 1])
    },
    output: new OutputFolder(outputDir, { format: 'PNG', width: WIDTH, height: HEIGHT }),
    timeoutMs: DEADLINE_MS
  })
  const sent = countBytesSent(node, [FETCH_PROTOCOL, PIECES_PROTOCOL])
  const hosts = Array.from({ length: Math.min(run.hosts, run.workers) }, () =>
    fork(new URL('./lib-transfer-host.js', import.meta.url), [], { env: { ...process.env, BLENDNET_LOG: 'warn' } }))
  try {
    await Promise.all(hosts.map(async (host, h) => {
      const workers = Array.from({ length: run.workers }, (_, i) => i).filter(i => i % hosts.length === h).length
      await askHost(host, { type: 'start', bootstrap: addrOf(node), workers }, 'ready')
    }))
    await waitFor(() => node.services.pubsub.getSubscribers(JOBS_TOPIC).length >= run.workers,
      `${run.workers} workers to join`, 120_000)

    const ready = new Set<string>()
    let lastReady = 0
    const allReady = new Promise<void>((resolve) => {
      for (const host of hosts) {
        host.on('message', (reply: TransferHostReply) => {
          if (reply.type !== 'files-ready') return
          ready.add(reply.peer)
          lastReady = performance.now()
          if (ready.size === run.workers) resolve()
        })
      }
    })
    const writtenBefore = await writtenBytes()
    const started = performance.now()
    const outcome = coordinator.run()
    await Promise.race([allReady, outcome])
    const writtenAfter = await writtenBytes()
    const coordinatorBytes = sent.total
    for (const host of hosts) host.send({ type: 'release' } satisfies TransferHostCommand)
    await outcome
    const reports = await Promise.all(hosts.map(async host => await askHost(host, { type: 'stop' }, 'report')))
    return {
      run,
      workersWithScene: ready.size,
      coordinatorBytes,
      coordinatorWrittenBytes: writtenBefore === undefined || writtenAfter === undefined ? undefined : writtenAfter - writtenBefore,
      allHaveSceneMs: lastReady - started,
      workers: reports.flatMap(r => r.type === 'report' ? r.workers : [])
    }
  } finally {
    for (const host of hosts) if (host.exitCode === null) host.kill('SIGKILL')
    await node.stop()
  }
}

/** One raw TCP copy of `scene` to a child process, which writes it to disk. */
export async function timeRawCopy (dir: string, scene: string): Promise<number> {
  const server = createServer(socket => { createReadStream(scene).pipe(socket) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const host = fork(new URL('./lib-transfer-host.js', import.meta.url))
  try {
    const port = (server.address() as { port: number }).port
    const started = performance.now()
    await askHost(host, { type: 'raw', port, dest: join(dir, 'raw-copy') }, 'raw-done')
    return performance.now() - started
  } finally {
    host.kill('SIGKILL')
    server.close()
    await rm(join(dir, 'raw-copy'), { force: true })
  }
}

/** Sends a command to the transfer host and waits for the reply expected. */
async function askHost (child: ChildProcess, command: TransferHostCommand,
  expected: TransferHostReply['type']): Promise<TransferHostReply> {
  return await ask<TransferHostCommand, TransferHostReply>(child, command, expected, 'transfer host', DEADLINE_MS)
}

const mb = (bytes: number): string => (bytes / MB).toFixed(1)

export function transferTable (results: TransferResult[], rawMs: number, sizeBytes: number): string {
  const rows = results.map(r => {
    const fromPeers = r.workers.reduce((n, w) => n + w.fromPeers, 0)
    return [
      `blendnet, ${r.run.workers} workers`, `${r.workersWithScene}/${r.run.workers}`, mb(r.coordinatorBytes),
      (r.coordinatorBytes / sizeBytes).toFixed(2),
      r.coordinatorWrittenBytes === undefined ? 'n/a' : mb(r.coordinatorWrittenBytes),
      mb(fromPeers), (r.allHaveSceneMs / 1000).toFixed(2),
      (sizeBytes * r.workersWithScene / MB / (r.allHaveSceneMs / 1000)).toFixed(0)
    ]
  })
  rows.push(['raw TCP, one copy', '1/1', mb(sizeBytes), '1.00', 'n/a', '0.0',
    (rawMs / 1000).toFixed(2), (sizeBytes / MB / (rawMs / 1000)).toFixed(0)])
  return [
    '| run | workers with the scene | coordinator upload MB | × scene | coordinator process wrote MB ' +
      '| worker-to-worker MB | time s | delivered MB/s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(row => `| ${row.join(' | ')} |`)
  ].join('\n')
}

/** Per worker: where its pieces came from, and what it served. */
export function workerLines (result: TransferResult): string[] {
  return result.workers.map((w, i) => `- worker ${i + 1} (${w.peer.slice(-6)}): ` +
    `${mb(w.fromCoordinator)} MB from the coordinator, ${mb(w.fromPeers)} MB from workers, ` +
    `served ${mb(w.served)} MB`)
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      size: { type: 'string', default: '500MB' },
      workers: { type: 'string', default: '8' },
      hosts: { type: 'string', default: '2' }
    }
  })
  const sizeBytes = parseSize(values.size, '--size')
  const hosts = whole(values.hosts, '--hosts')
  const [started, loadAtStart] = [new Date(), loadNow()]
  const dir = await tempDir('blendnet-bench-transfer-')
  try {
    const scene = join(dir, 'scene.blend')
    await writeRandomFile(scene, sizeBytes)
    // The writer rounds up to whole 4 MiB blocks: report the real size.
    const actualBytes = (await stat(scene)).size
    const results: TransferResult[] = []
    for (const workers of wholeList(values.workers, '--workers')) {
      const result = await runTransfer({ sizeBytes: actualBytes, workers, hosts }, dir, scene)
      results.push(result)
      process.stderr.write(`transfer: ${workers} workers: ${(result.allHaveSceneMs / 1000).toFixed(2)} s, ` +
        `coordinator upload ${(result.coordinatorBytes / actualBytes).toFixed(2)} × the scene\n`)
    }
    const rawMs = await timeRawCopy(dir, scene)
    process.stdout.write([
      ...machineLines(started, [loadAtStart, loadNow()]),
      `- scene: ${mb(actualBytes)} MB of random bytes, one file; workers in up to ${hosts} child processes, ` +
        'the coordinator in the parent',
      '', transferTable(results, rawMs, actualBytes), '',
      ...results.flatMap(r => [`Pieces of each worker, ${r.run.workers} workers:`, '', ...workerLines(r), '']),
      ''
    ].join('\n'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`transfer: ${(err as Error).message}\n`)
    process.exitCode = 1
  })
}
