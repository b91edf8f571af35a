/**
 * Claim latency: how long a worker waits for its grant, at several swarm
 * sizes in one run (PRODUCT.md, Targets: p99 under 50 ms on loopback).
 * One job of 1-frame chunks on workers of mixed speeds (lib-swarm.ts);
 * each worker's claims are timed in its own process around
 * CoordinatorClient.claim, the coordinator's handling in this one.
 *
 *   scripts/node.sh dist/bench/claims.js [--workers 8,32] [--frames 500] \
 *     [--ideal 60] [--hosts 4] [--host-nice 10]
 *
 * The worker hosts run --host-nice steps nicer than the coordinator: a
 * swarm would put each worker's CPU on its own machine, here all share
 * the coordinator's cores. The CPU the start's rush took is reported too.
 *
 * Progress goes to stderr; the Markdown report goes to stdout.
 */
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { cpus } from 'node:os'
import {
  describeSpeeds, frameMsForIdeal, loadNow, machineLines, percentile, runSwarmJob,
  speedMix, whole, wholeList, type ClaimHandling, type LoopDelay, type RushCpu, type SwarmJobOptions
} from './lib-swarm.js'

export interface ClaimsResult {
  run: SwarmJobOptions
  framesDone: number
  /** Claim call to reply, claims that were granted: all of them... */
  granted: number[]
  /** ...those after each worker's first grant, past the start's rush. */
  grantedLater: number[]
  /** The same for claims refused: another worker got the chunk first. */
  refused: number[]
  /** Per worker: first job announcement received to first grant. */
  firstGrant: number[]
  /** Coordinator, every claim request. */
  coordinator: ClaimHandling
  /** Per worker: claims refused before its first grant. */
  refusedBeforeFirst: number[]
  /** How late the coordinator's event loop ran, and the worst host's. */
  loopDelays: { coordinator: LoopDelay, hosts: LoopDelay }
  rushCpu?: RushCpu
  /** How much nicer than the coordinator each worker process ran. */
  hostNiceness: number[]
}

export async function runClaims (run: SwarmJobOptions): Promise<ClaimsResult> {
  const job = await runSwarmJob(run)
  const claims = job.workers.flatMap(w => w.claims)
  return {
    run,
    framesDone: job.outcome.done,
    granted: claims.filter(c => c.granted).map(c => c.ms),
    grantedLater: job.workers.flatMap(w => {
      const first = w.claims.findIndex(c => c.granted)
      return w.claims.slice(first + 1).filter(c => c.granted).map(c => c.ms)
    }),
    refused: claims.filter(c => !c.granted).map(c => c.ms),
    firstGrant: job.workers.flatMap(w => w.firstGrantMs === undefined ? [] : [w.firstGrantMs]),
    coordinator: job.coordinatorClaims,
    refusedBeforeFirst: job.workers.map(w => {
      const first = w.claims.findIndex(c => c.granted)
      return first === -1 ? w.claims.length : first
    }),
    loopDelays: {
      coordinator: job.coordinatorLoopDelay,
      hosts: job.hostLoopDelays.reduce((a, b) => b.p99 > a.p99 ? b : a)
    },
    rushCpu: job.rushCpu,
    hostNiceness: job.hostNiceness
  }
}

const MEASURES: Array<[string, (r: ClaimsResult) => number[]]> = [
  ['claim → grant (worker)', r => r.granted],
  ['claim → grant, after its first grant (worker)', r => r.grantedLater],
  ['claim → refusal: chunk already taken (worker)', r => r.refused],
  ['first announcement → first grant (worker)', r => r.firstGrant],
  ['claim bytes in → reply out (coordinator)', r => r.coordinator.requests]
]

const ms = (v: number): string => Number.isNaN(v) ? '-' : v.toFixed(1)

export function claimsTable (results: ClaimsResult[]): string {
  const rows = results.flatMap(r => [
    ...MEASURES.map(([name, pick]) => {
      const values = pick(r)
      return `| ${r.run.workers} | ${name} | ${values.length} | ` +
        [50, 95, 99, 100].map(p => ms(percentile(values, p))).join(' | ') + ' |'
    }),
    loopRow(r.run.workers, 'event-loop delay, coordinator process', r.loopDelays.coordinator),
    loopRow(r.run.workers, 'event-loop delay, busiest worker process', r.loopDelays.hosts)
  ])
  return [
    '| workers | measure | n | p50 ms | p95 ms | p99 ms | max ms |',
    '|---:|---|---:|---:|---:|---:|---:|',
    ...rows
  ].join('\n')
}

/** How many races each worker lost before its first grant. */
export function refusalsBeforeFirst (r: ClaimsResult): string {
  const n = r.refusedBeforeFirst
  const mean = n.reduce((a, b) => a + b, 0) / Math.max(1, n.length)
  return `claims refused before a worker's first grant: mean ${mean.toFixed(1)}, ` +
    `max ${Math.max(0, ...n)}`
}

/**
 * The CPU the start's rush took: the coordinator's from the job's start
 * (its start-up included) to its grant to the last new worker, each
 * worker process's from the first announcement it heard until all of
 * its own workers had a grant. Work, not a bound on latency: how much
 * of it falls before a given grant depends on the scheduler.
 */
export function rushLine (r: ClaimsResult, cores = cpus().length): string {
  if (r.rushCpu === undefined) return 'CPU of the rush: not measured (a worker, or a worker process, had no grant)'
  const hosts = r.rushCpu.hostsMs.reduce((a, b) => a + b, 0)
  const total = r.rushCpu.coordinatorMs + hosts
  return `CPU of the rush to every worker's first grant: coordinator ${r.rushCpu.coordinatorMs.toFixed(0)} ms, ` +
    `worker processes ${hosts.toFixed(0)} ms (${(hosts / r.run.workers).toFixed(1)} ms a worker); ` +
    `${total.toFixed(0)} ms in all, ${(total / cores).toFixed(0)} ms of all ${cores} cores`
}

function loopRow (workers: number, name: string, d: LoopDelay): string {
  return `| ${workers} | ${name} | - | ${ms(d.p50)} | - | ${ms(d.p99)} | ${ms(d.max)} |`
}

interface Options {
  workers: number[]
  frames: number
  idealMs: number
  hosts: number
  hostNice: number
}

function readOptions (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: 'string', default: '8,32' },
      frames: { type: 'string', default: '500' },
      ideal: { type: 'string', default: '60' },
      hosts: { type: 'string', default: '4' },
      'host-nice': { type: 'string', default: '10' }
    }
  })
  return {
    workers: wholeList(values.workers, '--workers'),
    frames: whole(values.frames, '--frames'),
    idealMs: whole(values.ideal, '--ideal') * 1000,
    hosts: whole(values.hosts, '--hosts'),
    hostNice: Math.min(19, whole(values['host-nice'], '--host-nice', 0))
  }
}

async function main (): Promise<void> {
  const opts = readOptions(process.argv.slice(2))
  const [started, loadAtStart] = [new Date(), loadNow()]
  const results: ClaimsResult[] = []
  for (const workers of opts.workers) {
    const frameMs = frameMsForIdeal(opts.idealMs, workers, opts.frames)
    const result = await runClaims({
      workers, frames: opts.frames, chunkSize: 1, frameMs, hosts: opts.hosts, hostNice: opts.hostNice
    })
    results.push(result)
    process.stderr.write(`claims: ${workers} workers: ${result.granted.length} granted, ` +
      `p99 ${percentile(result.granted, 99).toFixed(1)} ms\n`)
  }
  process.stdout.write([
    ...machineLines(started, [loadAtStart, loadNow()]),
    `- job: ${opts.frames} frames in 1-frame chunks; workers ` +
      results.map(r => `${r.run.workers} (${describeSpeeds(speedMix(r.run.workers))}, ` +
        `${r.run.frameMs} ms a frame at 1x)`).join(' and ') +
      `; workers in up to ${opts.hosts} child processes run ` +
      `${[...new Set(results.flatMap(r => r.hostNiceness))].join(', ')} steps nicer (\`nice -n\`) ` +
      'than the coordinator, in the parent',
    '', claimsTable(results), '',
    ...results.map(r => `- ${r.run.workers} workers: ${refusalsBeforeFirst(r)}; ` +
      `${r.coordinator.requests.length} claim requests over ${r.coordinator.streams} streams; ` +
      rushLine(r)), ''
  ].join('\n'))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`claims: ${(err as Error).message}\n`)
    process.exitCode = 1
  })
}
