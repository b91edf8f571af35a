/**
 * The coordinator: the `submit` process's side of one job. It announces
 * the job's open chunks on the jobs topic, grants claims, serves the scene,
 * accepts verified frames into the output folder, and reopens chunks whose
 * lease lapsed. `run()` resolves when every chunk is done or has failed.
 */
import type { Message, TopicValidatorResult } from '@libp2p/gossipsub'
import {
  ANNOUNCE_INTERVAL_MS, CHUNK_LOG_PROTOCOL, DEFAULT_CHUNK_TARGET_MS, DEFAULT_WORKER_WAIT_MS, JOBS_TOPIC,
  LEASE_MS, MAX_ANNOUNCED_OFFERS, MAX_WORKER_FAILURES, PRESENCE_TIMEOUT_MS, PROGRESS_PROTOCOL, RESULT_PROTOCOL
} from '../common/constants.js'
import { logger } from '../common/log.js'
import type { JobSpec } from '../job/spec.js'
import { BlobServer } from '../net/fetch.js'
import { HeldFiles } from './held-files.js'
import { PieceSeeding } from './piece-seeding.js'
import { DEFAULT_RATE_LIMIT, PeerRateLimit, type RateLimitOptions } from '../net/rate-limit.js'
import { validateSwarmMessage } from '../net/gossip.js'
import { describeOffer, healthSummary, unmetRequirements, type WorkerCapabilities } from '../job/requirements.js'
import type { SwarmNode } from '../net/node.js'
import { decodeSwarmMessage, encodeSwarmMessage, requirementsToWire, type SwarmMessage } from '../net/wire.js'
import { openClaimDesk, type ClaimDesk } from './claim-handler.js'
import type { CoordinatorContext } from './context.js'
import { NO_PEER_HINT, type FailedFrame, type JobEvent, type JobOutcome } from './events.js'
import { JobState } from './job-state.js'
import { Scheduler, type SchedulerOptions } from './scheduler.js'
import type { OutputFolder } from './output.js'
import { ChunkLogBook } from './log-book.js'
import { registerChunkLogHandler } from './log-handler.js'
import { registerProgressHandler } from './progress-handler.js'
import { registerResultHandler } from './result-handler.js'

const log = logger('coordinator')

export interface CoordinatorOptions {
  node: SwarmNode
  job: JobSpec
  output: OutputFolder
  /** Frames already in the output folder, checked against its journal. */
  alreadyDone?: ReadonlySet<number>
  leaseMs?: number
  /** Give up when no worker has shown up for this long. */
  workerWaitMs?: number
  /** Give up on the frames still missing after this long. */
  timeoutMs?: number
  /** Streams per peer per second (default DEFAULT_RATE_LIMIT). */
  rateLimit?: RateLimitOptions
  /** Peer IDs that may claim; undefined: any worker (an open swarm). */
  allowedWorkers?: ReadonlySet<string>
  /** Chunk sizing; by default the planned chunks are kept whole. */
  scheduling?: SchedulerOptions
  /** Announced: workers take jobs of higher priority first. */
  priority?: number
  onEvent?: (event: JobEvent) => void
}

/** How often leases and presence are checked. */
const TICK_MS = 500

/** How long every present worker may be unable to render the job before
 * it fails: long enough for a capable worker that is joining too. */
const NO_FIT_GRACE_MS = 5000

/** While no worker is present, say so after 3 s and then every 10 s. */
const FIRST_WAITING_NOTICE_MS = 3000
const WAITING_NOTICE_MS = 10_000

export class Coordinator {
  private readonly ctx: CoordinatorContext
  private readonly present = new Map<string, number>()
  private readonly capabilities = new Map<string, WorkerCapabilities>()
  private readonly rejected: Record<string, number> = {}
  private readonly blobs: BlobServer
  private seeding?: PieceSeeding
  private desk?: ClaimDesk
  /** The job's files as submitted, whatever happens to them since. */
  private readonly held = new HeldFiles()
  private readonly limit: PeerRateLimit
  private readonly started = Date.now()
  private lastWorkerSeen = Date.now()
  private joinedAny = false // workers that all left are not workers that never came
  private lastWaitingNotice = Date.now() - WAITING_NOTICE_MS + FIRST_WAITING_NOTICE_MS
  private timers: NodeJS.Timeout[] = []
  private announceSoon?: NodeJS.Timeout
  private announcedAt = 0
  private finish?: (outcome: JobOutcome) => void
  private stopReason?: string
  private unfitSince?: number

  constructor (private readonly opts: CoordinatorOptions) {
    const leaseMs = opts.leaseMs ?? LEASE_MS
    this.limit = new PeerRateLimit(opts.node, opts.rateLimit ?? DEFAULT_RATE_LIMIT, (peer) => {
      this.reject(peer, 'flooding', 'opened streams faster than allowed; cut off')
    })
    this.blobs = new BlobServer(opts.node, peer => this.limit.admit(peer))
    this.ctx = {
      node: opts.node,
      job: opts.job,
      state: new JobState(opts.job.chunks, { leaseMs, alreadyDone: opts.alreadyDone }),
      scheduler: new Scheduler(opts.scheduling ?? { fixed: true, targetMs: DEFAULT_CHUNK_TARGET_MS }),
      output: opts.output,
      leaseMs,
      seenNonces: new Map(),
      logs: new ChunkLogBook(),
      presentWorkers: () => new Set(this.present.keys()),
      mayClaim: (worker) => this.mayClaim(worker),
      admit: (peer) => this.limit.admit(peer),
      markPresent: (worker, caps) => { this.markPresent(worker, caps) },
      reject: (peer, kind, reason) => { this.reject(peer, kind, reason) },
      onGranted: (chunk, worker, frames, speculative) => { this.onGranted(chunk, worker, frames, speculative) },
      onFrameDone: (chunk, frame, worker, path) => { this.onFrameDone(chunk, frame, worker, path) },
      onFrameRejected: (frame, worker, reason) => { this.emit({ type: 'frame-rejected', frame, worker, reason }) },
      onChunkFailed: (chunk, worker, reason, final) => { this.onChunkFailed(chunk, worker, reason, final) },
      onChunkReleased: (chunk, worker) => {
        const frames = this.ctx.state.remaining(this.ctx.state.chunks[chunk])
        log.info('chunk released', { job: this.jobId, chunk, peer: worker })
        this.emit({ type: 'chunk-released', chunk, frames, worker })
        this.scheduleAnnounce()
      },
      onChunkProgress: (chunk, worker, progress) => {
        this.emit({ type: 'chunk-progress', chunk, worker, progress })
      },
      onOutputFailed: (reason) => {
        log.error('output folder failed', { job: this.jobId, reason })
        this.cancel(reason)
      }
    }
  }

  get jobId (): string {
    return this.opts.job.jobId
  }

  /** Runs the job to its end. */
  async run (): Promise<JobOutcome> {
    const outcome = new Promise<JobOutcome>((resolve) => { this.finish = resolve })
    await this.start()
    try {
      return await outcome
    } finally {
      await this.stop()
    }
  }

  /** Ends the job now; frames still missing fail with `reason`. */
  cancel (reason: string): void {
    this.stopReason = reason
    this.complete()
  }

  private async start (): Promise<void> {
    const { node, job } = this.opts
    const files = await this.held.open(job.files)
    this.held.watch((name) => { this.cancel(`"${name}" was written over on this machine while the job ran, so workers can no longer fetch what was submitted; save under another name (a save from Blender is fine) and run the same command again to render it as it is now`) })
    for (const file of files) this.blobs.add(file.sha256, file.path)
    this.blobs.addBytes(job.manifest.sha256, job.manifest.bytes)
    await this.blobs.start()
    this.seeding = new PieceSeeding({ ...this.ctx, job: { ...job, files } })
    await this.seeding.start()
    this.desk = (await openClaimDesk(node)).attach(this.ctx)
    await registerResultHandler(this.ctx)
    await registerChunkLogHandler(this.ctx)
    await registerProgressHandler(this.ctx)

    const pubsub = node.services.pubsub
    pubsub.topicValidators.set(JOBS_TOPIC, (peer, msg) => this.validate(peer.toString(), msg))
    pubsub.addEventListener('message', (evt) => { this.onGossip(evt.detail) })
    // A new subscriber learns of the job at once, not at the next beat.
    pubsub.addEventListener('subscription-change', () => { this.scheduleAnnounce() })
    pubsub.subscribe(JOBS_TOPIC)

    log.info('job started', { job: job.jobId, frames: this.ctx.state.progress().total,
      scene: job.settings.scene, resumed: this.ctx.state.alreadyDone })
    this.announce()
    this.timers.push(setInterval(() => { this.announce() }, ANNOUNCE_INTERVAL_MS))
    this.timers.push(setInterval(() => { this.tick() }, TICK_MS))
    if (this.ctx.state.isFinished()) this.complete()
  }

  private async stop (): Promise<void> {
    for (const timer of this.timers) clearInterval(timer)
    clearTimeout(this.announceSoon)
    await this.publish({ finished: { jobId: this.jobId, succeeded: this.ctx.state.succeeded() } })
    await this.ctx.logs.collect(this.opts.node, this.jobId)
    await this.blobs.stop()
    await this.seeding?.stop()
    await this.held.close()
    await this.desk?.close()
    await this.opts.node.unhandle([RESULT_PROTOCOL, CHUNK_LOG_PROTOCOL, PROGRESS_PROTOCOL])
  }

  private emit (event: JobEvent): void {
    this.opts.onEvent?.(event)
  }

  // ------------------------------------------------------------ gossip --

  private validate (peer: string, msg: Message): TopicValidatorResult {
    return validateSwarmMessage(msg, (reason) => {
      this.reject(peer, 'malformed-gossip', reason)
    })
  }

  private onGossip (msg: Message): void {
    if (msg.topic !== JOBS_TOPIC || msg.type !== 'signed') return
    const decoded = decodeSwarmMessage(msg.data)
    if (decoded === undefined || !('worker' in decoded)) return
    if (decoded.worker.leaving === true) this.markGone(msg.from.toString(), true)
    else this.markPresent(msg.from.toString(), decoded.worker.capabilities)
  }

  private async publish (message: SwarmMessage): Promise<void> {
    try {
      await this.opts.node.services.pubsub.publish(JOBS_TOPIC, encodeSwarmMessage(message))
    } catch (err) {
      log.debug('publish failed', { job: this.jobId, err: (err as Error).message })
    }
  }

  /** Now, or 20 ms after the last: workers joining at once get one announcement. */
  private scheduleAnnounce (): void {
    if (this.announceSoon !== undefined) return
    const wait = this.announcedAt + 20 - Date.now()
    if (wait <= 0) { this.announce(); return }
    this.announceSoon = setTimeout(() => { this.announceSoon = undefined; this.announce() }, wait)
  }

  private announce (): void {
    const { job, state } = this.ctx
    if (state.isFinished()) return
    this.announcedAt = Date.now()
    // Only the first few: a job can have thousands of open chunks.
    const open = state.openChunks(MAX_ANNOUNCED_OFFERS)
    void this.publish({
      job: {
        jobId: job.jobId,
        blend: { sha256: job.blend.sha256, size: job.blend.size, name: job.blend.name },
        settings: job.settings,
        requirements: requirementsToWire(job.requirements),
        openChunks: open.map(c => ({ id: c.id, frames: state.remaining(c) })),
        ...state.announced(),
        coordinatorAddrs: this.opts.node.getMultiaddrs().map(a => a.bytes),
        leaseMs: this.ctx.leaseMs,
        manifest: { sha256: job.manifest.sha256, size: job.manifest.bytes.byteLength, name: 'manifest' },
        priority: this.opts.priority ?? 0
      }
    })
  }

  // ----------------------------------------------------------- workers --

  private markPresent (worker: string, caps: WorkerCapabilities): void {
    // Only workers that may claim count: others cannot help this job.
    if (!this.mayClaim(worker)) return
    if (!this.present.has(worker)) {
      const unmet = unmetRequirements(this.opts.job.requirements, caps, this.opts.node.peerId.toString())
      log.info('worker joined', {
        job: this.jobId, peer: worker, blender: caps.blenderVersion, unmet: unmet.join('; ') || undefined
      })
      this.emit({ type: 'worker-joined', worker, summary: healthSummary(caps), unmet, blender: caps.blenderVersion })
    }
    this.present.set(worker, Date.now())
    this.capabilities.set(worker, caps)
    this.lastWorkerSeen = Date.now()
    this.joinedAny = true
  }

  /** `stopped`: it said it stops; otherwise it has not been heard from. */
  private markGone (worker: string, stopped: boolean): void {
    if (!this.present.delete(worker)) return
    this.capabilities.delete(worker)
    log.info('worker left', { job: this.jobId, peer: worker, stopped })
    this.emit({ type: 'worker-left', worker, stopped })
  }

  private mayClaim (worker: string): boolean {
    return this.opts.allowedWorkers === undefined || this.opts.allowedWorkers.has(worker)
  }

  private reject (peer: string, kind: string, reason: string): void {
    this.rejected[kind] = (this.rejected[kind] ?? 0) + 1
    log.warn('rejected message', { job: this.jobId, peer, kind, reason })
    this.emit({ type: 'message-rejected', peer, reason: `${kind}: ${reason}` })
  }

  private onGranted (chunk: number, worker: string, frames: number[], speculative: boolean): void {
    log.info(speculative ? 'granted speculative copy' : 'granted claim',
      { job: this.jobId, chunk, peer: worker, frames: frames.join(',') })
    this.emit({ type: 'chunk-granted', chunk, worker, frames, speculative })
    // Nothing is gossiped per grant (docs/protocol.md): a claim for a taken
    // chunk is granted another, and announcements list what is open.
  }

  private onFrameDone (chunk: number, frame: number, worker: string, path: string): void {
    this.ctx.state.frameDone(chunk, frame)
    this.ctx.logs.frameWritten(chunk, worker)
    this.ctx.scheduler.frameAccepted(worker, Date.now())
    const { done, total } = this.ctx.state.progress()
    log.info('frame written', { job: this.jobId, chunk, frame, peer: worker, path })
    this.emit({ type: 'frame-done', frame, worker, path, done, total })
    if (this.ctx.state.isFinished()) this.complete()
  }

  private onChunkFailed (chunk: number, worker: string, reason: string, final: boolean): void {
    log.warn('chunk failed', { job: this.jobId, chunk, peer: worker, reason, final })
    const frames = this.ctx.state.remaining(this.ctx.state.chunks[chunk])
    this.emit({ type: 'chunk-failed', chunk, frames, worker, reason, final })
    this.scheduleAnnounce()
    if (this.ctx.state.isFinished()) this.complete()
  }

  // -------------------------------------------------------------- time --

  private tick (): void {
    const now = Date.now()
    const { state } = this.ctx
    for (const [worker, seen] of this.present) {
      if (now - seen > PRESENCE_TIMEOUT_MS) this.markGone(worker, false)
    }
    const lapsed = state.expireLeases(now)
    for (const { chunk, worker } of lapsed) {
      log.warn('lease expired', { job: this.jobId, chunk: chunk.id, peer: worker })
      this.emit({ type: 'lease-expired', chunk: chunk.id, frames: state.remaining(chunk), worker })
    }
    if (lapsed.length > 0) this.scheduleAnnounce()
    for (const chunk of state.failUnclaimable(this.ctx.presentWorkers())) {
      log.warn('chunk failed: no worker left to try it', { job: this.jobId, chunk: chunk.id })
    }
    if (!state.isFinished() && state.noEligibleWorker(this.ctx.presentWorkers())) {
      this.stopReason = `no eligible worker left: every worker present failed ${MAX_WORKER_FAILURES} chunks of this job`
      this.complete()
      return
    }
    this.checkFit(now)
    this.checkLimits(now)
    if (state.isFinished()) this.complete()
  }

  /** Workers are present but none can render the job as specified: say
   * what is missing and what the swarm offers, instead of waiting. */
  private checkFit (now: number): void {
    const present = [...this.capabilities.values()]
    const unfit = present.map(c => unmetRequirements(this.opts.job.requirements, c, this.opts.node.peerId.toString()))
    if (present.length === 0 || unfit.some(u => u.length === 0)) {
      this.unfitSince = undefined
      return
    }
    this.unfitSince ??= now
    if (now - this.unfitSince < NO_FIT_GRACE_MS) return
    const needs = [...new Set(unfit.flat())].join('; ')
    this.stopReason = `no worker can render this job (${needs}); the swarm offers ${describeOffer(present)}`
    this.complete()
  }

  private checkLimits (now: number): void {
    const waitMs = this.opts.workerWaitMs ?? DEFAULT_WORKER_WAIT_MS
    const peers = this.opts.node.getConnections().length
    if (this.present.size === 0 && now - this.lastWorkerSeen > waitMs) {
      this.stopReason = this.joinedAny ? 'every worker left, and none came back in time'
        : `no worker joined the swarm in time${peers === 0 ? ` (${NO_PEER_HINT})` : ''}`
      this.complete()
    } else if (this.present.size === 0 && now - this.lastWaitingNotice >= WAITING_NOTICE_MS) {
      this.lastWaitingNotice = now
      this.emit({ type: 'waiting-for-workers', waitedMs: now - this.lastWorkerSeen, peers, allLeft: this.joinedAny })
    }
    const timeoutMs = this.opts.timeoutMs
    if (timeoutMs !== undefined && now - this.started > timeoutMs) {
      this.stopReason = 'the job timed out'
      this.complete()
    }
  }

  private complete (): void {
    const finish = this.finish
    if (finish === undefined) return
    this.finish = undefined
    finish(this.outcome())
  }

  private outcome (): JobOutcome {
    const { state } = this.ctx
    const failedFrames: FailedFrame[] = []
    for (const chunk of state.chunks) {
      if (chunk.status === 'done') continue
      // Blender's own words where there are any, else why the job stopped.
      const reason = chunk.failures.at(-1)?.reason ?? this.stopReason ?? 'not rendered'
      for (const frame of state.remaining(chunk)) failedFrames.push({ frame, reason })
    }
    const { total, done } = state.counts()
    return {
      succeeded: failedFrames.length === 0,
      total,
      done,
      alreadyThere: state.alreadyDone,
      failedFrames: failedFrames.sort((a, b) => a.frame - b.frame),
      rejected: { ...this.rejected }
    }
  }
}
