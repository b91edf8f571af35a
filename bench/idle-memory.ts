/**
 * Idle memory: the RSS of a real `blendnet worker` process joined to a
 * swarm and idle, before and after it has rendered a job, beside a bare
 * Node.js process for scale (PRODUCT.md, Targets: under 120 MB).
 *
 *   scripts/node.sh dist/bench/idle-memory.js [--idle 30] [--frames 48]
 *
 * The worker renders with the fake Blender (it passes the start-up probe
 * at once and writes 8x8 PNGs); the real Blender only generates the
 * scene and lets `submit` read it. Memory is read from /proc/PID/status.
 * Progress goes to stderr; the Markdown report goes to stdout.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { findBlender } from '../src/blender/install.js'
import { packagePath } from '../src/common/paths.js'
import { makeDemoScene } from '../src/demo/demo-scene.js'
import { runCli, startCliWorker, stopWorkers } from '../test/helpers/cli.js'
import { addrOf, startNode, waitFor } from '../test/helpers/swarm.js'
import { loadNow, machineLines, whole } from './lib-swarm.js'

const FAKE = packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts')
const SAMPLE_MS = 1000

export interface IdleMemoryOptions {
  idleMs: number
  frames: number
  log?: (line: string) => void
}

/** From /proc/PID/status, in KiB. */
export interface Memory {
  /** Resident now. */
  VmRSS: number
  /** Resident at most, since the process started. */
  VmHWM: number
  /** Resident now: heap and other private memory... */
  RssAnon: number
  /** ...and mapped files, the node binary's code among them. */
  RssFile: number
}

/** A quiet spell: its last sample, and the most resident memory seen. */
export interface Phase { last: Memory, maxRss: number }

export interface IdleMemoryResult {
  options: IdleMemoryOptions
  bareNode: Memory
  idle: Phase
  afterJob: Phase
  submitExit: number | undefined
  /** Frames the fake Blender finished, from its count log. */
  framesRendered: number
}

export async function readMemory (pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const field = (name: keyof Memory): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)
    if (match === null) throw new Error(`/proc/${pid}/status has no ${name}`)
    return Number(match[1])
  }
  return {
    VmRSS: field('VmRSS'), VmHWM: field('VmHWM'), RssAnon: field('RssAnon'), RssFile: field('RssFile')
  }
}

async function watchIdle (pid: number, ms: number): Promise<Phase> {
  let last = await readMemory(pid)
  let maxRss = last.VmRSS
  for (let waited = 0; waited < ms; waited += SAMPLE_MS) {
    await sleep(Math.min(SAMPLE_MS, ms - waited))
    last = await readMemory(pid)
    maxRss = Math.max(maxRss, last.VmRSS)
  }
  return { last, maxRss }
}

/** A Node.js that does nothing: what any Node process costs here. */
async function bareNode (): Promise<Memory> {
  const proc = execa(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { reject: false })
  try {
    await sleep(2000)
    return await readMemory(proc.pid ?? 0)
  } finally {
    proc.kill('SIGTERM')
    await proc
  }
}

export async function measureIdleMemory (opts: IdleMemoryOptions): Promise<IdleMemoryResult> {
  const log = opts.log ?? (() => {})
  const root = await mkdtemp(join(tmpdir(), 'blendnet-idle-memory-'))
  const seed = await startNode()
  const countLog = join(root, 'rendered.log')
  let worker: Awaited<ReturnType<typeof startCliWorker>> | undefined
  try {
    const scene = join(root, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: opts.frames, width: 8, height: 8 })
    // The swarm it joins: one plain peer in this process.
    worker = await startCliWorker(join(root, 'worker'), [addrOf(seed)],
      ['--blender', FAKE, '--sandbox', 'none'],
      { FAKE_BLENDER_COUNT_LOG: countLog, FAKE_BLENDER_FRAME_SECONDS: '0.05' })
    const pid = worker.proc.pid ?? 0
    await waitFor(() => seed.getConnections().length > 0, 'the worker to join')

    log(`worker ${pid} joined; idle for ${opts.idleMs / 1000} s`)
    const idle = await watchIdle(pid, opts.idleMs)
    log(`submitting ${opts.frames} frames`)
    const submit = await runCli(['submit', scene, '--frames', `1-${opts.frames}`, '--chunk-size', '4',
      '--output', join(root, 'renders'), '--bootstrap', worker.addr])
    log(`submit exited ${String(submit.exitCode)}; idle for ${opts.idleMs / 1000} s`)
    const afterJob = await watchIdle(pid, opts.idleMs)

    const counted = await readFile(countLog, 'utf8').catch(() => '')
    return {
      options: opts,
      bareNode: await bareNode(),
      idle,
      afterJob,
      submitExit: submit.exitCode,
      framesRendered: counted.split('\n').filter(l => l !== '').length
    }
  } finally {
    if (worker !== undefined) await stopWorkers([worker])
    await seed.stop()
    await rm(root, { recursive: true, force: true })
  }
}

const mib = (kib: number): string => (kib / 1024).toFixed(1)

export function memoryTable (r: IdleMemoryResult): string {
  const idleS = r.options.idleMs / 1000
  const row = (what: string, m: Memory, maxRss = m.VmRSS): string =>
    `| ${what} | ${[m.VmRSS, maxRss, m.RssAnon, m.RssFile, m.VmHWM].map(mib).join(' | ')} |`
  return [
    '| process | VmRSS MiB (last) | VmRSS MiB (max seen) | RssAnon MiB | RssFile MiB ' +
      '| VmHWM MiB (peak since start) |',
    '|---|---:|---:|---:|---:|---:|',
    row('bare `node -e setInterval(…)`, after 2 s', r.bareNode),
    row(`\`blendnet worker\`, joined, idle ${idleS} s`, r.idle.last, r.idle.maxRss),
    row(`\`blendnet worker\`, idle ${idleS} s after a ${r.options.frames}-frame job ` +
      `(${r.framesRendered} frames rendered, submit exit ${String(r.submitExit)})`,
    r.afterJob.last, r.afterJob.maxRss)
  ].join('\n')
}

/** The target is 120 MB; /proc counts KiB. */
export function verdict (r: IdleMemoryResult): string {
  const worst = Math.max(r.idle.maxRss, r.afterJob.maxRss)
  const mb = worst * 1024 / 1e6
  return `Largest idle VmRSS: ${mib(worst)} MiB = ${mb.toFixed(1)} MB, ` +
    `${mb < 120 ? 'under' : 'over'} the 120 MB target.`
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      idle: { type: 'string', default: '30' },
      frames: { type: 'string', default: '48' }
    }
  })
  const [started, loadAtStart] = [new Date(), loadNow()]
  const result = await measureIdleMemory({
    idleMs: whole(values.idle, '--idle') * 1000,
    frames: whole(values.frames, '--frames'),
    log: line => { process.stderr.write(`idle-memory: ${line}\n`) }
  })
  process.stdout.write([
    ...machineLines(started, [loadAtStart, loadNow()]),
    '- worker: `blendnet worker --sandbox none --blender ' +
      'test/fixtures/fake-blender/blender-renders-well-and-counts`, joined to one other peer',
    '', memoryTable(result), '', verdict(result), ''
  ].join('\n'))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`idle-memory: ${(err as Error).message}\n`)
    process.exitCode = 1
  })
}
