/**
 * What a worker knows of one job: the coordinator's latest announcement,
 * the chunks granted to others since, and the chunks it was refused.
 * Gossip is only a hint; the coordinator's reply to a claim is the truth.
 */
import type { PeerId } from '@libp2p/interface'
import type { ChunkRenderRequest } from '../blender/driver.js'
import { ANNOUNCE_INTERVAL_MS, ANY_CHUNK, MAX_WORKER_FAILURES } from '../common/constants.js'
import { isImageFormat, type ImageFormat } from '../job/naming.js'
import { unmetRequirements, type WorkerCapabilities } from '../job/requirements.js'
import { requirementsFromWire, type ChunkGranted, type ChunkOffer, type JobAnnouncement } from '../net/wire.js'

export type Offer = ChunkOffer

/** Claim among the first few open chunks, at random, so that workers
 * claiming at the same moment rarely collide, and early frames go first. */
const PICK_WINDOW = 4

/**
 * Jobs this worker may claim from now, in the order to try them: higher
 * priority first; between equals, the one it was granted work of longest
 * ago, so that equal jobs take turns.
 */
export function inTurn (jobs: Iterable<KnownJob>, now: number): KnownJob[] {
  return [...jobs]
    .filter(job => job.ineligible === undefined && job.unreachableUntil <= now)
    .sort((a, b) => b.priority - a.priority || a.lastGrantedAt - b.lastGrantedAt)
}

export class KnownJob {
  /** Why this worker will not take the job at all, if it won't. */
  ineligible?: string
  private readonly taken = new Set<number>()
  private readonly refusedHere = new Set<number>()
  /** Chunks this worker failed: the coordinator will not grant them again. */
  private readonly failedHere = new Set<number>()
  /** Failures counted, not chunks: a coordinator that grants the same
   * chunk again and again must not be claimed from forever. */
  private failures = 0

  /** Told to wait for the next announcement: nothing is open for it, or
   * faster workers will render what is. */
  private waiting = false
  /** When it last asked for a copy: at most once per announcement period,
   * or a swarm of idle workers would ask at every grant near the end. */
  private copyAskedAt = 0
  /** When the coordinator last announced the job. */
  lastSeen = Date.now()
  /** When this worker was last granted a chunk of it: jobs of equal
   * priority take turns. */
  lastGrantedAt = 0
  /** Claims are not tried before this time: the coordinator did not answer. */
  unreachableUntil = 0

  constructor (readonly coordinator: PeerId, public announcement: JobAnnouncement) {}

  get priority (): number {
    return this.announcement.priority ?? 0
  }

  granted (): void {
    this.lastGrantedAt = Date.now()
  }

  /** What a worker with these capabilities lacks for the job; empty if nothing. */
  unmetBy (capabilities: WorkerCapabilities): string[] {
    return unmetRequirements(requirementsFromWire(this.announcement.requirements), capabilities)
  }

  /** The job's image format; 'PNG' stands in until admit() refuses. */
  get format (): ImageFormat {
    const format = this.announcement.settings.format
    return isImageFormat(format) ? format : 'PNG'
  }

  /** The job's overrides of the scene's settings, as the driver takes them. */
  get overrides (): Partial<ChunkRenderRequest> {
    const s = this.announcement.settings
    return {
      engine: s.engine === '' ? undefined : s.engine,
      samples: s.samples === 0 ? undefined : s.samples,
      resolutionPercentage: s.resolutionPercentage === 0 ? undefined : s.resolutionPercentage,
      device: s.device === 'GPU' ? 'GPU' : s.device === 'CPU' ? 'CPU' : undefined,
      allowMissing: s.allowMissing === true ? true : undefined
    }
  }

  /** A fresh announcement supersedes what gossip said since the last. */
  update (announcement: JobAnnouncement): void {
    this.announcement = announcement
    this.lastSeen = Date.now()
    this.taken.clear()
    this.refusedHere.clear()
    this.waiting = false
  }

  takenBy (granted: ChunkGranted): void {
    this.taken.add(granted.chunkId)
  }

  refused (chunkId: number): void {
    this.refusedHere.add(chunkId)
  }

  /** Nothing to claim until the next announcement says how things stand. */
  waitForAnnouncement (): void {
    this.waiting = true
  }

  failed (chunkId: number): void {
    this.failedHere.add(chunkId)
    this.failures++
  }

  nextOffer (): Offer | undefined {
    // The coordinator refuses us after this many; don't ask.
    if (this.failures >= MAX_WORKER_FAILURES || this.waiting) return undefined
    const open = this.announcement.openChunks.filter(c =>
      !this.taken.has(c.id) && !this.refusedHere.has(c.id) &&
      !this.failedHere.has(c.id) && c.frames.length > 0)
    if (open.length > 0) return open[Math.floor(Math.random() * Math.min(PICK_WINDOW, open.length))]
    // Nothing open but chunks still rendering: the coordinator may hand
    // out a speculative copy of one (docs/protocol.md).
    const now = Date.now()
    if (now - this.copyAskedAt < ANNOUNCE_INTERVAL_MS || (this.announcement.leasedCount ?? 0) === 0) return undefined
    this.copyAskedAt = now
    return { id: ANY_CHUNK, frames: [] }
  }
}
