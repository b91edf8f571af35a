/**
 * The worker: listens on the jobs topic, claims an open chunk whenever it
 * is idle, fetches the scene (cached by hash), renders the chunk with
 * Blender, pushes every frame to the coordinator and starts over. It holds
 * one chunk at a time and renews its lease while it works on it.
 */
import { rm } from 'node:fs/promises'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Message } from '@libp2p/gossipsub'
import type { PrivateKey } from '@libp2p/interface'
import { UnsafeJobPathError } from '../blender/dependencies.js'
import { ChunkRenderError } from '../blender/errors.js'
import type { ChunkRenderer } from '../blender/driver.js'
import {
  ANY_CHUNK, JOB_STALE_MS, JOBS_TOPIC, MAX_JOBS_PER_COORDINATOR, MAX_KNOWN_JOBS, PRESENCE_INTERVAL_MS, UNREACHABLE_BACKOFF_MS
} from '../common/constants.js'
import { messageOf, WireError } from '../common/errors.js'
import { logger } from '../common/log.js'
import { isImageFormat } from '../job/naming.js'
import type { WorkerCapabilities } from '../job/requirements.js'
import { validateSwarmMessage } from '../net/gossip.js'
import type { SwarmNode } from '../net/node.js'
import { decodeSwarmMessage, encodeSwarmMessage } from '../net/wire.js'
import { openClaimChannelsAhead } from './claim-channels.js'
import { CoordinatorClient } from './coordinator-client.js'
import { EarlyUploads, LeaseLostError, reportChunkFailure, sendChunkLog, sendLogOfDelivered } from './delivery.js'
import { JobFileTamperedError, JobFiles, JobTooLargeError } from './job-files.js'
import { inTurn, KnownJob, type Offer } from './known-job.js'
import { LeaseKeeper } from './lease-keeper.js'
import { Prefetches } from './prefetch.js'
import { capabilitiesWithRoom } from './room.js'
import type { WorkDir } from './work-dir.js'

const log = logger('worker')

export interface WorkerOptions {
  node: SwarmNode
  key: PrivateKey
  renderer: ChunkRenderer
  /** What this worker's Blender proved it can do (src/blender/probe.ts). */
  capabilities: WorkerCapabilities
  workDir: WorkDir
  /** Leave once the first job this worker joined has finished. */
  once?: boolean
  /** Forget a job not announced for this long (default JOB_STALE_MS). */
  jobStaleMs?: number
  /** Stop a Blender silent for this long (default: the driver's). */
  hangTimeoutMs?: number
  /** Coordinator peer IDs whose jobs it takes; undefined: any. */
  allowedCoordinators?: ReadonlySet<string>
  /** The most bytes of job files it downloads for one job. */
  maxJobBytes?: number
}

export class Worker {
  private readonly jobs = new Map<string, KnownJob>()
  private readonly refusedCoordinators = new Set<string>()
  private readonly files: JobFiles
  private readonly prefetches: Prefetches
  private busy = false
  /** The chunk loop while it runs: stop() waits for it to hand back. */
  private working?: Promise<void>
  private stopping = false
  private joined?: string
  private presenceTimer?: NodeJS.Timeout
  private current?: AbortController
  /** The job (coordinator/jobId) of the chunk being rendered. */
  private currentJob?: string
  /** Each job's .blend here: a warm Blender kept for it ends with the job. */
  private readonly blendPaths = new Map<string, string>()
  private resolveDone?: () => void
  /** Resolves when a `--once` worker has finished its job, or on a fatal error. */
  readonly done: Promise<void>
  /** Why the worker stopped by itself, when it had to. */
  fatal?: Error

  constructor (private readonly opts: WorkerOptions) {
    this.done = new Promise((resolve) => { this.resolveDone = resolve })
    this.files = new JobFiles(opts.node, opts.workDir, opts.maxJobBytes)
    this.prefetches = new Prefetches(this.files, async () => await this.capabilitiesNow())
  }

  async start (): Promise<void> {
    const pubsub = this.opts.node.services.pubsub
    pubsub.topicValidators.set(JOBS_TOPIC, (peer, msg) =>
      validateSwarmMessage(msg, (reason) => {
        log.warn('rejected gossip', { peer: peer.toString(), reason })
      }))
    pubsub.addEventListener('message', (evt) => { this.onGossip(evt.detail) })
    pubsub.subscribe(JOBS_TOPIC)
    openClaimChannelsAhead(this.opts.node, this.opts.allowedCoordinators)
    this.presenceTimer = setInterval(() => {
      void this.announcePresence()
      void this.forgetStaleJobs()
    }, PRESENCE_INTERVAL_MS)
    void this.announcePresence()
  }

  /**
   * Something this worker cannot trust itself past (a job file changed
   * under it): hand the chunk back, and leave; the caller wipes the work
   * files. From inside the work loop: `done` resolves once it is back.
   */
  private failFatally (err: Error): void {
    log.error('stopping: cannot go on safely', { err: err.message })
    this.fatal ??= err
    this.stopping = true
    clearInterval(this.presenceTimer)
  }

  /** Stops taking work: Blender is stopped and its chunk handed back. */
  async stop (): Promise<void> {
    this.stopping = true
    clearInterval(this.presenceTimer)
    this.current?.abort()
    await this.files.stop()
    await this.working
    await this.opts.renderer.closeAll?.()
    await this.announcePresence(true)
    this.resolveDone?.()
  }

  /** Leaving, coordinators and `status` drop it now, not after a timeout. */
  private async announcePresence (leaving = false): Promise<void> {
    const capabilities = await this.capabilitiesNow()
    const jobId = leaving ? '' : this.currentJob?.split('/')[1] ?? ''
    const message = encodeSwarmMessage({ worker: { capabilities, idle: leaving || !this.busy, jobId, leaving } })
    await this.opts.node.services.pubsub.publish(JOBS_TOPIC, message)
      .catch((err: Error) => { log.debug('publish failed', { err: err.message }) })
  }

  private async capabilitiesNow (): Promise<WorkerCapabilities> {
    return await capabilitiesWithRoom(this.opts.capabilities, this.opts.workDir.root, this.opts)
  }

  // ------------------------------------------------------------ gossip --

  private onGossip (msg: Message): void {
    if (msg.topic !== JOBS_TOPIC || msg.type !== 'signed') return
    const decoded = decodeSwarmMessage(msg.data)
    if (decoded === undefined) return
    const from = msg.from.toString()
    if ('job' in decoded) this.onJob(from, decoded.job)
    else if ('granted' in decoded) this.jobs.get(key(from, decoded.granted.jobId))?.takenBy(decoded.granted)
    else if ('finished' in decoded) void this.onFinished(from, decoded.finished.jobId)
  }

  private onJob (from: string, ann: KnownJob['announcement']): void {
    const id = key(from, ann.jobId)
    let job = this.jobs.get(id)
    if (job === undefined) {
      if (!this.acceptsJobsFrom(from, ann.jobId)) return
      if (!this.hasRoomFor(from)) return
      job = new KnownJob(peerIdFromString(from), ann)
      this.jobs.set(id, job)
      this.learnAddrs(job)
      this.admit(job)
      // Busy with another job's chunk: its files arrive meanwhile.
      if (this.busy) this.prefetches.start(id, job)
      // Tell the new coordinator at once that it has a worker, unless the
      // claim about to be made says so.
      if (this.busy || job.ineligible !== undefined) void this.announcePresence()
    } else {
      job.update(ann)
      // Its addresses change: a relay slot it reserved since, a new port.
      this.learnAddrs(job)
    }
    void this.pump()
  }

  /** The allow-list, if any; a refused coordinator is logged once. */
  private acceptsJobsFrom (coordinator: string, jobId: string): boolean {
    const allowed = this.opts.allowedCoordinators
    if (allowed === undefined || allowed.has(coordinator)) return true
    // Bounded: a flood of made-up coordinators must not grow memory.
    if (!this.refusedCoordinators.has(coordinator) && this.refusedCoordinators.size < MAX_KNOWN_JOBS) {
      this.refusedCoordinators.add(coordinator)
      log.warn('ignoring jobs of a coordinator not on the allow-list', { job: jobId, peer: coordinator })
    }
    return false
  }

  private hasRoomFor (coordinator: string): boolean {
    const fromIt = [...this.jobs.values()].filter(j => j.coordinator.toString() === coordinator)
    if (fromIt.length < MAX_JOBS_PER_COORDINATOR && this.jobs.size < MAX_KNOWN_JOBS) return true
    log.debug('ignoring job: too many known', { peer: coordinator })
    return false
  }

  /** Decide once per job whether this worker can render it at all. */
  private admit (job: KnownJob): void {
    const ann = job.announcement
    const fields = { job: ann.jobId, peer: job.coordinator.toString() }
    const unmet = job.unmetBy(this.opts.capabilities)
    if (unmet.length > 0) {
      job.ineligible = unmet.join('; ')
    } else if (!isImageFormat(ann.settings.format)) {
      job.ineligible = `unknown image format ${ann.settings.format}`
    }
    if (job.ineligible !== undefined) {
      log.warn('not taking job', { ...fields, reason: job.ineligible })
      return
    }
    log.info('found job', { ...fields, scene: ann.settings.scene, open: ann.openCount })
    this.joined ??= key(job.coordinator.toString(), ann.jobId)
  }

  private learnAddrs (job: KnownJob): void {
    const addrs = job.announcement.coordinatorAddrs.flatMap((bytes) => {
      try { return [multiaddr(bytes)] } catch { return [] }
    })
    if (addrs.length === 0) return
    this.opts.node.peerStore.merge(job.coordinator, { multiaddrs: addrs })
      .catch((err: Error) => { log.debug('peer store', { err: err.message }) })
  }

  /** A job whose coordinator fell silent is over for this worker too. */
  private async forgetStaleJobs (): Promise<void> {
    const now = Date.now()
    for (const job of [...this.jobs.values()]) {
      if (now - job.lastSeen < (this.opts.jobStaleMs ?? JOB_STALE_MS)) continue
      log.warn('coordinator went silent, forgetting job', {
        job: job.announcement.jobId, peer: job.coordinator.toString()
      })
      await this.onFinished(job.coordinator.toString(), job.announcement.jobId)
    }
  }

  private async onFinished (from: string, jobId: string): Promise<void> {
    const id = key(from, jobId)
    const job = this.jobs.get(id)
    if (job === undefined) return
    this.jobs.delete(id)
    log.info('job finished', { job: jobId, peer: from })
    // Nothing left to render or deliver for it: stop before its files go.
    if (this.currentJob === id) this.current?.abort()
    await this.prefetches.forget(id)
    this.files.forget(from, jobId, job.announcement.manifest)
    const blendPath = this.blendPaths.get(id)
    this.blendPaths.delete(id)
    if (blendPath !== undefined) await this.opts.renderer.close?.(blendPath)
    await this.opts.workDir.removeJob(from, jobId)
    if (this.opts.once === true && this.joined === id) {
      await this.opts.workDir.removeWorkFiles()
      await this.stop()
    }
  }

  // -------------------------------------------------------------- work --

  /** Claims and renders chunks until no job has one left for us. */
  private async pump (): Promise<void> {
    if (this.busy || this.stopping) return
    this.busy = true
    this.working = this.work().finally(() => { this.busy = false })
    await this.working
  }

  private async work (): Promise<void> {
    for (let next = this.pick(); next !== undefined && !this.stopping; next = this.pick()) {
      await this.tryChunk(next.job, next.offer)
    }
  }

  private backOff (coordinator: string): void {
    const until = Date.now() + UNREACHABLE_BACKOFF_MS
    for (const job of this.jobs.values()) {
      if (job.coordinator.toString() === coordinator) job.unreachableUntil = until
    }
  }

  private pick (): { job: KnownJob, offer: Offer } | undefined {
    for (const job of inTurn(this.jobs.values(), Date.now())) {
      const offer = job.nextOffer()
      if (offer !== undefined) return { job, offer }
    }
    return undefined
  }

  private async tryChunk (job: KnownJob, offer: Offer): Promise<void> {
    const jobId = job.announcement.jobId
    // Room on disk changes as jobs come and go: checked before each claim.
    const capabilities = await this.capabilitiesNow()
    const unmet = job.unmetBy(capabilities)
    if (unmet.length > 0) {
      job.ineligible = unmet.join('; ')
      log.warn('not taking job', { job: jobId, peer: job.coordinator.toString(), reason: job.ineligible })
      return
    }
    const client = new CoordinatorClient(this.opts.node, this.opts.key, job.coordinator, jobId)
    const fields = { job: jobId, chunk: offer.id === ANY_CHUNK ? 'any' : offer.id, peer: job.coordinator.toString() }
    let reply
    try {
      reply = await client.claim(offer.id, capabilities)
    } catch (err) {
      // No answer: the coordinator's fault, unless the job ended (and was forgotten) meanwhile.
      const over = this.jobs.get(key(job.coordinator.toString(), jobId)) !== job
      log[over ? 'debug' : 'warn'](over ? 'claim cut by the end of its job' : 'coordinator did not answer a claim',
        { ...fields, err: messageOf(err) })
      if (!over) this.backOff(job.coordinator.toString())
      return
    }
    if (!reply.ok) {
      const excluded = reply.excluded === true // not on its allow-list: for good
      log[excluded ? 'warn' : 'debug']('claim refused', { ...fields, reason: reply.reason })
      if (excluded) job.ineligible = reply.reason
      else if (reply.wait === true) job.waitForAnnouncement(); else job.refused(offer.id)
      return
    }
    // The coordinator may grant another open chunk than the one asked for.
    const chunkId = reply.chunkId ?? offer.id
    log.info(reply.speculative === true ? 'speculative copy granted' : 'claim granted',
      { ...fields, chunk: chunkId, frames: reply.frames.join(',') })
    job.granted()
    await this.renderChunk(job, client, chunkId, reply.frames, reply.leaseMs)
  }

  private async renderChunk (job: KnownJob, client: CoordinatorClient,
    chunkId: number, frames: number[], leaseMs: number): Promise<void> {
    const ann = job.announcement
    const fields = { job: ann.jobId, chunk: chunkId }
    const abort = new AbortController()
    this.current = abort
    this.currentJob = key(job.coordinator.toString(), ann.jobId)
    const early = new EarlyUploads(client, chunkId, frames, abort)
    const lease = new LeaseKeeper(client, chunkId, leaseMs, (reason) => {
      // A renewal that crossed the last frame's acceptance: nothing lost.
      if (early.accepted >= frames.length) return
      log.warn('lease lost, stopping chunk', { ...fields, reason })
      abort.abort()
    })
    const chunkDir = this.opts.workDir.chunkDir(job.coordinator.toString(), ann.jobId, chunkId)
    const progress = client.progressOf(chunkId)
    try {
      const files = await this.files.prepare(ann.jobId, job.coordinator, ann.manifest)
      this.blendPaths.set(key(job.coordinator.toString(), ann.jobId), files.blendPath)
      await this.files.verify(files)
      const rendered = await this.opts.renderer.render({
        blendPath: files.blendPath,
        pathMap: files.pathMap,
        scene: ann.settings.scene,
        frames,
        format: job.format,
        ...job.overrides,
        // Never without the operator's --allow-scripts, whatever a job says.
        allowScripts: ann.requirements.scripts === true && this.opts.capabilities.scripts === true,
        chunkDir,
        hangTimeoutMs: this.opts.hangTimeoutMs,
        signal: abort.signal,
        onLogLine: (line) => { early.onLogLine(line); progress.onLogLine(line) },
        onFrameSaved: early.onFrameSaved
      })
      await early.settle()
      // Side by side, as Blender waits for both: a log is taken after the last frame too.
      const [, last] = await Promise.allSettled([
        sendChunkLog(client, chunkId, rendered.logPath, false), early.deliverRest(rendered.frames)])
      if (last.status === 'rejected') throw last.reason
    } catch (err) {
      if (err instanceof JobFileTamperedError) this.failFatally(err)
      // A job this worker must not take at all: too large, or whose
      // manifest would place files outside its folder (hostile).
      const refused = err instanceof JobTooLargeError || err instanceof UnsafeJobPathError || err instanceof WireError
      if (refused) {
        job.ineligible = messageOf(err)
        log.warn('not taking job', { ...fields, reason: job.ineligible })
      }
      if (err instanceof LeaseLostError) {
        // Not this render's fault: someone else has the chunk now.
        log.warn('chunk no longer ours, dropping it', { ...fields, reason: err.message })
        await sendLogOfDelivered(client, chunkId, chunkDir, early.accepted)
      } else if (this.stopping || refused) {
        // Stopping: the log of what was delivered, then the chunk back now, not after its lease.
        await sendLogOfDelivered(client, chunkId, chunkDir, early.accepted)
        await client.release(chunkId).catch((e: Error) => {
          log.warn('could not release chunk', { ...fields, err: e.message })
        })
      } else if (!abort.signal.aborted) {
        job.failed(chunkId)
        if (err instanceof ChunkRenderError) await sendChunkLog(client, chunkId, err.logPath, true)
        await reportChunkFailure(client, chunkId, err)
      } else {
        log.info('chunk stopped: no longer ours (another worker delivered it first, or the job ended)', fields)
        await sendLogOfDelivered(client, chunkId, chunkDir, early.accepted)
      }
    } finally {
      // No upload may still be reading the chunk dir when it goes.
      await early.settle().catch(() => {})
      progress.stop()
      lease.stop()
      this.current = undefined
      this.currentJob = undefined
      await rm(chunkDir, { recursive: true, force: true })
      // Only now, with the chunk handed back, may the caller wipe and exit.
      if (this.fatal !== undefined) this.resolveDone?.()
    }
  }
}

const key = (coordinator: string, jobId: string): string => `${coordinator}/${jobId}`
