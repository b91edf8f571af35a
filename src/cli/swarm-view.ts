/**
 * What `blendnet status` sees of the swarm: the latest presence of each
 * worker, and the jobs announced, from the jobs topic's gossip. Every
 * string in it came from another peer: it is printed only through
 * `printable`.
 */
import type { Message } from '@libp2p/gossipsub'
import { JOBS_TOPIC } from '../common/constants.js'
import { decodeSwarmMessage, type Capabilities } from '../net/wire.js'
import { printable } from './console.js'

/** At most this many workers or jobs are kept: gossip is anyone's. */
const MAX_ENTRIES = 10_000

export interface SeenWorker {
  peer: string
  capabilities: Capabilities
  idle: boolean
  /** The job it renders a chunk of, when it says. */
  job?: string
  /** Its publisher's counter: a late copy of an older message loses. */
  seqno: bigint
}

export interface SeenJob {
  id: string
  coordinator: string
  scene: string
  openChunks: number
  /** Absent from coordinators of earlier releases. */
  framesTotal?: number
  framesDone?: number
}

export class SwarmView {
  readonly workers = new Map<string, SeenWorker>()
  readonly jobs = new Map<string, SeenJob>()
  /** Workers that said they stop, by that message's seqno. */
  private readonly left = new Map<string, bigint>()

  constructor (private readonly onChange: () => void = () => {}) {}

  onGossip (msg: Message): void {
    if (msg.topic !== JOBS_TOPIC || msg.type !== 'signed') return
    const decoded = (() => {
      try { return decodeSwarmMessage(msg.data) } catch { return undefined }
    })()
    if (decoded === undefined) return
    const peer = msg.from.toString()
    if ('worker' in decoded && this.hasRoom(this.workers, peer) && this.hasRoom(this.left, peer)) {
      const { capabilities, idle, jobId, leaving } = decoded.worker
      const seqno = msg.sequenceNumber
      const newest = this.workers.get(peer)?.seqno ?? this.left.get(peer) ?? -1n
      if (newest >= seqno) return
      this.left.delete(peer)
      this.workers.delete(peer)
      if (leaving === true) this.left.set(peer, seqno)
      else this.workers.set(peer, { peer, capabilities, idle, job: jobId === '' || jobId === undefined ? undefined : jobId, seqno })
    } else if ('job' in decoded && this.hasRoom(this.jobs, decoded.job.jobId)) {
      const { jobId, settings, openCount, framesTotal, framesDone } = decoded.job
      this.jobs.set(jobId, {
        id: jobId, coordinator: peer, scene: settings.scene, openChunks: openCount,
        framesTotal: framesTotal === 0 ? undefined : framesTotal, framesDone: framesTotal === 0 ? undefined : framesDone
      })
    } else if ('finished' in decoded) {
      this.jobs.delete(decoded.finished.jobId)
    }
    this.onChange()
  }

  private hasRoom (map: Map<string, unknown>, key: string): boolean {
    return map.has(key) || map.size < MAX_ENTRIES
  }

  /** Workers sorted by peer ID, for stable output. */
  sortedWorkers (): SeenWorker[] {
    return [...this.workers.values()].sort((a, b) => a.peer.localeCompare(b.peer))
  }

  /** `idle`, `busy`, or `busy: job 3f2a… (scene "Shot")`. */
  stateOf (worker: SeenWorker): string {
    if (worker.idle) return 'idle'
    if (worker.job === undefined) return 'busy'
    const scene = this.jobs.get(worker.job)?.scene
    return `busy: job ${printable(worker.job, 80)}${scene === undefined ? '' : ` (scene "${printable(scene, 60)}")`}`
  }

  toJson (connectedPeers: number, waitedMs: number): object {
    return {
      connectedPeers,
      waitedMs,
      workers: this.sortedWorkers().map(w => ({
        peer: w.peer,
        blenderVersion: w.capabilities.blenderVersion,
        engines: w.capabilities.engines,
        denoisers: w.capabilities.denoisers,
        gpuDevices: w.capabilities.gpuDevices,
        cpuCount: w.capabilities.cpuCount,
        memoryBytes: w.capabilities.memoryBytes,
        ffmpeg: w.capabilities.ffmpeg,
        scripts: w.capabilities.scripts === true,
        maxJobBytes: w.capabilities.maxJobBytes ?? 0,
        state: w.idle ? 'idle' : 'busy',
        job: w.job ?? null
      })),
      jobs: [...this.jobs.values()]
    }
  }
}

const SHORT_ENGINE: Record<string, string> = {
  BLENDER_EEVEE: 'EEVEE', BLENDER_EEVEE_NEXT: 'EEVEE', BLENDER_WORKBENCH: 'Workbench', CYCLES: 'Cycles'
}

/** `Cycles, EEVEE; GPU OPTIX; denoise OPENIMAGEDENOISE; 8 CPUs, 15.6 GiB; scripts`. */
export function describeCapabilities (caps: Capabilities): string {
  const engines = caps.engines.map(e => SHORT_ENGINE[e] ?? e).join(', ')
  const gpus = [...new Set(caps.gpuDevices.map(d => d.type))]
  const parts = [
    engines === '' ? 'no engine' : engines,
    gpus.length === 0 ? 'no GPU' : `GPU ${gpus.join('/')}`,
    caps.denoisers.length === 0 ? 'no denoiser' : `denoise ${caps.denoisers.join('/')}`,
    `${caps.cpuCount} CPUs, ${(caps.memoryBytes / 1024 ** 3).toFixed(1)} GiB`
  ]
  if (caps.scripts === true) parts.push('scripts')
  return printable(parts.join('; '), 200)
}

/** Columns padded to their widest cell, two spaces apart. */
export function formatTable (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  return rows.map(r => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  ')).join('\n')
}
