/**
 * What the swarm benchmarks (scheduling, claims) share: one job run by a
 * real coordinator in this process, its workers spread over a few child
 * processes (lib-worker-host.ts) as real libp2p nodes on 127.0.0.1 with a
 * "Blender" that sleeps per frame, and the numbers both report.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { cpus, getPriority, loadavg, release } from 'node:os'
import { dirname } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import type { StreamHandler } from '@libp2p/interface'
import {
  ADAPTIVE_MAX_CHUNK, CLAIM_PROTOCOL, DEFAULT_CHUNK_TARGET_MS, JOBS_TOPIC
} from '../src/common/constants.js'
import type { JobOutcome } from '../src/coordinator/events.js'
import type { SwarmNode } from '../src/net/node.js'
import { addrOf, startCoordinatorNode, startJob, waitFor } from '../test/helpers/swarm.js'
import { ask } from './lib-ipc.js'

/** Workers get these speeds in turn: a 2x worker renders a frame in half the time. */
export const SPEEDS = [1, 2, 4]

export function speedMix (workers: number): number[] {
  return Array.from({ length: workers }, (_, i) => SPEEDS[i % SPEEDS.length])
}

/**
 * A 1x frame time that makes a job's ideal makespan `idealMs`: the same
 * ideal at every worker count keeps the swarm's frame rate, and so its
 * claims, gossip and the load on this one machine, alike.
 */
export function frameMsForIdeal (idealMs: number, workers: number, frames: number): number {
  return Math.round(idealMs * speedMix(workers).reduce((a, b) => a + b, 0) / frames)
}

/** "3×1x, 3×2x, 2×4x" */
export function describeSpeeds (speeds: number[]): string {
  return SPEEDS.map(s => [s, speeds.filter(x => x === s).length])
    .filter(([, n]) => n > 0).map(([s, n]) => `${n}×${s}x`).join(', ')
}

export interface SwarmJobOptions {
  workers: number
  frames: number
  /** Frames per chunk; 0: adaptive chunks, as `submit` without --chunk-size. */
  chunkSize: number
  /** A 1x worker's time per frame. */
  frameMs: number
  /** Child processes the workers are spread over. */
  hosts: number
  /**
   * How much nicer than this process those run (`nice -n`, 0-19;
   * default 0). With 32 workers, each of whose CPU a swarm would put on
   * its own machine, the coordinator's answers would queue behind theirs.
   */
  hostNice?: number
}

export function chunkingName (chunkSize: number): string {
  return chunkSize === 0 ? 'adaptive' : String(chunkSize)
}

export interface ClaimSample { ms: number, granted: boolean }

/** What one worker did, as its host process measured it. */
export interface WorkerReport {
  peer: string
  speed: number
  frames: number
  /** Time actually slept for frames: shows how late the timers ran. */
  busyMs: number
  /** Every CoordinatorClient.claim call: from the call to the reply. */
  claims: ClaimSample[]
  /** From the first job announcement it received to its first grant. */
  firstGrantMs?: number
}

/** CPU time spent in the start's rush, as bench/README.md ("claims") tells. */
export interface RushCpu {
  /** From the job's start until it had granted every worker a chunk. */
  coordinatorMs: number
  /** Each worker host's, from the first announcement it heard until each of its workers had a grant. */
  hostsMs: number[]
}

/** IPC between this process and lib-worker-host.ts. */
export type HostCommand =
  | { type: 'start', bootstrap: string, speeds: number[], frameMs: number }
  | { type: 'stop' }
export type HostReply =
  | { type: 'ready' }
  | { type: 'report', workers: WorkerReport[], loopDelay: LoopDelay, rushCpuMs?: number }
  | { type: 'error', message: string }

/** How late a process's event loop ran, in ms: a busy process answers late. */
export interface LoopDelay { p50: number, p99: number, max: number }

export interface SwarmJobResult {
  outcome: JobOutcome
  /** From starting the coordinator to the last frame written. */
  makespanMs: number
  workers: WorkerReport[]
  /** The coordinator's side of every claim request. */
  coordinatorClaims: ClaimHandling
  coordinatorLoopDelay: LoopDelay
  /** One per worker host process. */
  hostLoopDelays: LoopDelay[]
  /** Undefined when some worker never had a grant. */
  rushCpu?: RushCpu
  /** How much nicer than this process each worker process ran, as read. */
  hostNiceness: number[]
}

/**
 * Runs one job of frames 1..N to its end. The clock starts once every
 * worker has joined (subscribed to the jobs topic) and the coordinator
 * starts; it stops at the last frame written.
 */
export async function runSwarmJob (opts: SwarmJobOptions): Promise<SwarmJobResult> {
  const speeds = speedMix(opts.workers)
  const ideal = opts.frames * opts.frameMs / speeds.reduce((a, b) => a + b, 0)
  let lastFrameAt = 0
  const adaptive = opts.chunkSize === 0
  let coordinatorClaims: ClaimHandling = { requests: [], streams: 0 }
  const granted = new Set<string>()
  let cpuAtStart: NodeJS.CpuUsage | undefined
  let rushCoordinatorMs: number | undefined
  const node = await startCoordinatorNode((n) => { coordinatorClaims = timeClaimHandling(n) })
  const job = await startJob(Array.from({ length: opts.frames }, (_, i) => i + 1),
    adaptive ? ADAPTIVE_MAX_CHUNK : opts.chunkSize, {
    node,
    scheduling: { fixed: !adaptive, targetMs: DEFAULT_CHUNK_TARGET_MS },
    onEvent: (e) => {
      if (e.type === 'frame-done') lastFrameAt = performance.now()
      if (e.type === 'chunk-granted' && granted.add(e.worker).size === opts.workers && cpuAtStart !== undefined) {
        rushCoordinatorMs ??= cpuMs(process.cpuUsage(cpuAtStart))
      }
    },
    // Far past any healthy run: a hung job ends, failed, instead of never.
    timeoutMs: 20 * ideal + 120_000
  })
  const hosts = new WorkerHosts(Math.min(opts.hosts, opts.workers), opts.hostNice ?? 0)
  try {
    await hosts.start(addrOf(job.node), speeds, opts.frameMs)
    // Joined both ways: a worker's subscription has arrived, and gossipsub
    // has its own stream to the worker, which it opens one peer at a time;
    // a submit's node meets its workers while Blender reads the scene.
    const joined = (): number => job.node.services.pubsub.getSubscribers(JOBS_TOPIC).length
    const reachable = (): number => job.node.getConnections().filter(c => c.streams.some(s =>
      s.direction === 'outbound' && s.protocol.startsWith('/meshsub/'))).length
    await waitFor(() => joined() >= opts.workers && reachable() >= opts.workers,
      `${opts.workers} workers to join`, 120_000)

    const hostNiceness = hosts.niceness()
    const loop = watchEventLoop()
    const started = performance.now()
    cpuAtStart = process.cpuUsage()
    const outcome = await job.coordinator.run()
    const coordinatorLoopDelay = loop.stop()
    const { workers, loopDelays, rushCpuMs } = await hosts.stop()
    const hostsMs = rushCpuMs.filter(ms => ms !== undefined)
    return {
      outcome, makespanMs: lastFrameAt - started, workers, coordinatorClaims,
      coordinatorLoopDelay, hostLoopDelays: loopDelays, hostNiceness,
      rushCpu: rushCoordinatorMs === undefined || hostsMs.length < rushCpuMs.length
        ? undefined
        : { coordinatorMs: rushCoordinatorMs, hostsMs }
    }
  } finally {
    await hosts.stop().catch(() => {})
    await job.node.stop()
    await rm(dirname(job.outputDir), { recursive: true, force: true })
  }
}

/** Samples every 10 ms; the histogram counts those 10 ms too, taken off here. */
export function watchEventLoop (): { stop: () => LoopDelay } {
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  histogram.enable()
  return {
    stop: () => {
      histogram.disable()
      const late = (ns: number): number => Math.max(0, ns / 1e6 - 10)
      const at = (p: number): number => late(histogram.percentile(p))
      return { p50: at(50), p99: at(99), max: late(histogram.max) }
    }
  }
}

export function cpuMs (usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000
}

export interface ClaimHandling {
  /** In ms, from each request's first bytes to the first bytes of its reply. */
  requests: number[]
  /** Claim streams the workers opened: about one each, not one a claim. */
  streams: number
}

/**
 * Times the coordinator's answer to every request on the claim protocol:
 * its own work, from the request's first bytes to its reply's. A worker
 * keeps one stream for all of its requests, so the times are per request,
 * not per stream. Wraps node.handle rather than using libp2p's `use()`
 * middleware: in libp2p 3.3.11 every inbound stream appends the handler
 * to the registered middleware array (connection.js, onIncomingStream),
 * so the Nth stream would run the handler N times.
 */
function timeClaimHandling (node: SwarmNode): ClaimHandling {
  const samples: ClaimHandling = { requests: [], streams: 0 }
  const handle = node.handle.bind(node)
  node.handle = async (protocol, handler, options) => {
    const timed: StreamHandler = (stream, connection) => {
      samples.streams++
      let requested: number | undefined
      stream.addEventListener('message', () => { requested ??= performance.now() })
      const send = stream.send.bind(stream)
      stream.send = (data) => {
        if (requested !== undefined) samples.requests.push(performance.now() - requested)
        requested = undefined
        return send(data)
      }
      return handler(stream, connection)
    }
    await handle(protocol, protocol === CLAIM_PROTOCOL ? timed : handler, options)
  }
  return samples
}

/** The child processes holding the workers, worker i in host i mod n. */
class WorkerHosts {
  private readonly children: ChildProcess[] = []
  private reports?: Promise<{ workers: WorkerReport[], loopDelays: LoopDelay[], rushCpuMs: Array<number | undefined> }>

  constructor (private readonly count: number, private readonly nice: number) {}

  async start (bootstrap: string, speeds: number[], frameMs: number): Promise<void> {
    const script = new URL('./lib-worker-host.js', import.meta.url)
    // Through nice(1): every thread of the child, from its start.
    const nice = this.nice === 0
      ? {}
      : { execPath: 'nice', execArgv: ['-n', String(this.nice), process.execPath, ...process.execArgv] }
    for (let h = 0; h < this.count; h++) this.children.push(fork(script, [], { stdio: 'inherit', ...nice }))
    await Promise.all(this.children.map(async (child, h) => {
      const mine = speeds.filter((_, i) => i % this.count === h)
      await askHost(child, { type: 'start', bootstrap, speeds: mine, frameMs }, 'ready')
    }))
  }

  niceness (): number[] {
    return this.children.map(child => getPriority(child.pid) - getPriority())
  }

  /** Stops every worker and collects what each measured; once. */
  async stop (): Promise<{ workers: WorkerReport[], loopDelays: LoopDelay[], rushCpuMs: Array<number | undefined> }> {
    this.reports ??= Promise.all(this.children.map(async child => {
      const reply = await askHost(child, { type: 'stop' }, 'report')
      if (reply.type !== 'report') throw new Error(`worker host ${child.pid ?? '?'} sent no report`)
      return reply
    })).then(replies => ({
      workers: replies.flatMap(r => r.workers),
      loopDelays: replies.map(r => r.loopDelay),
      rushCpuMs: replies.map(r => r.rushCpuMs)
    })).finally(async () => {
      await Promise.all(this.children.map(exited))
    })
    return await this.reports
  }
}

/** Waits for a host to exit; one that does not within 5 s is killed by its PID. */
async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exit = new Promise(resolve => child.once('exit', resolve))
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
  await exit
  clearTimeout(timer)
}

/** Sends a command to a worker host and waits for the reply expected. */
async function askHost (child: ChildProcess, command: HostCommand,
  expected: HostReply['type']): Promise<HostReply> {
  return await ask<HostCommand, HostReply>(child, command, expected, `worker host ${child.pid ?? '?'}`, 120_000)
}

// Numbers and report lines.

/** The p-th percentile (0-100), nearest rank; NaN when there are none. */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(p / 100 * sorted.length) - 1)]
}

export function machineLines (started: Date, loads: number[]): string[] {
  const cpu = cpus()
  return [
    `- date: ${started.toISOString()}`,
    `- machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}), ` +
      `Linux ${release()}, Node.js ${process.version}`,
    `- load average (1 min) at start / end: ${loads.map(l => l.toFixed(2)).join(' / ')}`
  ]
}

export function loadNow (): number {
  return loadavg()[0]
}

/** A comma-separated list of whole numbers of at least `min`. */
export function wholeList (text: string, option: string, min = 1): number[] {
  return text.split(',').map(part => whole(part, option, min))
}

export function whole (text: string, option: string, min = 1): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${option} "${text}": each must be a whole number, ${min} or more`)
  }
  return value
}
