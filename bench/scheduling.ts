/**
 * Scheduling: how close does a swarm of workers of mixed speeds get to
 * the ideal makespan? Workers run a "Blender" that sleeps per frame (a 1x
 * worker takes the row's frame time, 2x half that, 4x a quarter); every worker
 * count and chunk size is run in turn, in one run (targets: within 3% of
 * ideal at 8 workers, 10% at 100).
 *
 * The ideal is the best schedule of whole frames (or of the row's fixed
 * chunks): a frame is rendered by one worker, so no scheduler can beat
 * it. The fluid bound, all the work spread evenly by speed as if frames
 * could be split, is shown beside it; with 250 frames on 100 workers it
 * is out of reach of any scheduler by 16%.
 *
 *   scripts/node.sh dist/bench/scheduling.js [--workers 1,8,32,100] \
 *     [--chunk-sizes adaptive,1,4] [--frames 250] [--ideal 120 | --frame-ms MS] \
 *     [--hosts 4]
 *
 * Progress goes to stderr; the Markdown report goes to stdout.
 */
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  chunkingName, describeSpeeds, frameMsForIdeal, loadNow, machineLines, runSwarmJob, SPEEDS,
  speedMix, whole, wholeList, type SwarmJobOptions
} from './lib-swarm.js'

export interface SchedulingResult {
  run: SwarmJobOptions
  speeds: number[]
  framesDone: number
  makespanMs: number
  /** The fluid bound: all the work spread evenly by speed, frames × frame
   * time / Σ speeds, as if a frame could be split between workers. */
  idealMs: number
  /** The ideal: the best any scheduler can do handing out whole frames
   * (adaptive chunks) or the row's whole chunks. */
  wholeChunksMs: number
  /** Frames rendered by all the 1x workers, the 2x ones and the 4x ones. */
  framesBySpeed: number[]
  /** Frames rendered twice, where a speculative copy met its holder. */
  framesWasted: number
  claimsGranted: number
  claimsRefused: number
  /** How much longer the fake's sleeps took than asked, per frame on average. */
  sleepLateMs: number
}

export async function runScheduling (run: SwarmJobOptions): Promise<SchedulingResult> {
  const speeds = speedMix(run.workers)
  const job = await runSwarmJob(run)
  const claims = job.workers.flatMap(w => w.claims)
  const frames = job.workers.reduce((n, w) => n + w.frames, 0)
  const slept = job.workers.reduce((ms, w) => ms + w.busyMs, 0)
  const asked = job.workers.reduce((ms, w) => ms + w.frames * run.frameMs / w.speed, 0)
  return {
    run,
    speeds,
    framesDone: job.outcome.done,
    makespanMs: job.makespanMs,
    idealMs: run.frames * run.frameMs / speeds.reduce((a, b) => a + b, 0),
    wholeChunksMs: wholeChunkMakespan(run, speeds),
    framesBySpeed: SPEEDS.map(s =>
      job.workers.filter(w => w.speed === s).reduce((n, w) => n + w.frames, 0)),
    framesWasted: frames - job.outcome.done,
    claimsGranted: claims.filter(c => c.granted).length,
    claimsRefused: claims.filter(c => !c.granted).length,
    // Timers may fire a fraction of a millisecond early; that is not late.
    sleepLateMs: frames === 0 ? 0 : Math.max(0, (slept - asked) / frames)
  }
}

/**
 * Each chunk, largest first, to the worker that would finish it soonest:
 * optimal for chunks of one size on workers of fixed speeds, which is
 * every chunk here but a shorter last one.
 */
export function wholeChunkMakespan (run: SwarmJobOptions, speeds: number[]): number {
  // Adaptive chunks can shrink to one frame: the best is then 1-frame chunks.
  const size = run.chunkSize === 0 ? 1 : run.chunkSize
  const sizes = Array.from({ length: Math.ceil(run.frames / size) },
    (_, i) => Math.min(size, run.frames - i * size))
  const busyUntil = speeds.map(() => 0)
  for (const size of sizes) {
    const finish = speeds.map((s, i) => busyUntil[i] + size * run.frameMs / s)
    const best = finish.indexOf(Math.min(...finish))
    busyUntil[best] = finish[best]
  }
  return Math.max(...busyUntil)
}

function over (value: number, base: number): string {
  const pct = (value / base - 1) * 100
  return `${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%`
}

export function schedulingTable (results: SchedulingResult[]): string {
  const rows = results.map(r => [
    r.run.workers, describeSpeeds(r.speeds), r.run.frameMs,
    `${r.framesDone}/${r.run.frames}`, chunkingName(r.run.chunkSize),
    (r.makespanMs / 1000).toFixed(2), (r.wholeChunksMs / 1000).toFixed(2), over(r.makespanMs, r.wholeChunksMs),
    (r.idealMs / 1000).toFixed(2), over(r.makespanMs, r.idealMs),
    r.framesBySpeed.join(' / '), r.framesWasted, `${r.claimsGranted} / ${r.claimsRefused}`, r.sleepLateMs.toFixed(1)
  ].join(' | '))
  return [
    '| workers | speeds | 1x ms/frame | frames done | chunk size | makespan s ' +
      '| ideal s (whole frames or chunks) | over ideal | fluid bound s | over fluid bound ' +
      '| frames by 1x / 2x / 4x | frames rendered twice | claims granted / refused | sleep late ms/frame |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(row => `| ${row} |`)
  ].join('\n')
}

interface Options {
  workers: number[]
  chunkSizes: number[]
  frames: number
  hosts: number
  /** Each row's 1x frame time makes its ideal makespan this long... */
  idealMs: number
  /** ...unless every row is given this one. */
  frameMs?: number
}

function readOptions (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: 'string', default: '1,8,32,100' },
      'chunk-sizes': { type: 'string', default: 'adaptive,1,4' },
      frames: { type: 'string', default: '250' },
      ideal: { type: 'string', default: '120' },
      'frame-ms': { type: 'string' },
      hosts: { type: 'string', default: '4' }
    }
  })
  return {
    workers: wholeList(values.workers, '--workers'),
    // "adaptive" is chunk size 0, as SwarmJobOptions has it.
    chunkSizes: wholeList(values['chunk-sizes'].replace(/adaptive/g, '0'), '--chunk-sizes', 0),
    frames: whole(values.frames, '--frames'),
    hosts: whole(values.hosts, '--hosts'),
    idealMs: whole(values.ideal, '--ideal') * 1000,
    frameMs: values['frame-ms'] === undefined ? undefined : whole(values['frame-ms'], '--frame-ms')
  }
}

async function main (): Promise<void> {
  const opts = readOptions(process.argv.slice(2))
  const [started, loadAtStart] = [new Date(), loadNow()]
  const results: SchedulingResult[] = []
  for (const workers of opts.workers) {
    for (const chunkSize of opts.chunkSizes) {
      const frameMs = opts.frameMs ?? frameMsForIdeal(opts.idealMs, workers, opts.frames)
      const run = { workers, chunkSize, frames: opts.frames, hosts: opts.hosts, frameMs }
      const result = await runScheduling(run)
      results.push(result)
      process.stderr.write(`scheduling: ${workers} workers, chunk size ${chunkingName(chunkSize)}: ` +
        `${(result.makespanMs / 1000).toFixed(2)} s (ideal ${(result.idealMs / 1000).toFixed(2)} s)\n`)
    }
  }
  process.stdout.write([
    ...machineLines(started, [loadAtStart, loadNow()]),
    `- workers in up to ${opts.hosts} child processes, the coordinator in the parent; ` +
      'a 2x worker sleeps half as long a frame as a 1x one, a 4x a quarter',
    '', schedulingTable(results), ''
  ].join('\n'))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`scheduling: ${(err as Error).message}\n`)
    process.exitCode = 1
  })
}
