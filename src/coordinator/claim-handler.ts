/**
 * The coordinator's side of /blendnet/claim: signed claims, lease
 * renewals, releases and failure reports from workers. A worker keeps
 * one stream open for all of its requests, one at a time (see
 * worker/claim-channels.ts); a stream with a single request is served the
 * same way. The peer on the other end of the (noise-authenticated)
 * connection is the worker; a claim must also carry that peer's signature.
 *
 * The desk takes streams from when the coordinator's node starts, before
 * its job does, so that workers can open their channels ahead; requests
 * are answered once a job is attached.
 */
import type { Connection, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import { CLAIM_MAX_AGE_MS, CLAIM_PROTOCOL, STREAM_IDLE_TIMEOUT_MS } from '../common/constants.js'
import { messageOf } from '../common/errors.js'
import { framed, writeMessage } from '../net/streams.js'
import type { SwarmNode } from '../net/node.js'
import { verifyClaim } from '../net/signing.js'
import { hex } from '../net/fetch.js'
import {
  ClaimReplyCodec, ClaimRequestCodec, type Claim, type ClaimReply, type ClaimRequest,
  type ChunkFailure, type ChunkRelease, type LeaseRenewal
} from '../net/wire.js'
import type { CoordinatorContext } from './context.js'
import { PeerRateLimit } from '../net/rate-limit.js'
import { unmetRequirements } from '../job/requirements.js'

const OK_EMPTY: ClaimReply = { ok: true, reason: '', leaseMs: 0, frames: [] }
const NOT_STARTED: ClaimReply = { ok: false, reason: 'the job has not started yet', leaseMs: 0, frames: [], wait: true }

const desks = new WeakMap<SwarmNode, Promise<ClaimDesk>>()

/** The node's claim desk, taking streams from now on; one per node. */
export async function openClaimDesk (node: SwarmNode): Promise<ClaimDesk> {
  let desk = desks.get(node)
  if (desk === undefined) {
    desk = ClaimDesk.listen(node)
    desks.set(node, desk)
    desk.catch(() => { desks.delete(node) })
  }
  return await desk
}

export class ClaimDesk {
  private ctx?: CoordinatorContext
  private readonly streams = new Set<Stream>()
  /** Before its job, no honest worker asks anything: a limit of its own. */
  private readonly early: PeerRateLimit

  private constructor (private readonly node: SwarmNode) {
    this.early = new PeerRateLimit(node)
  }

  static async listen (node: SwarmNode): Promise<ClaimDesk> {
    const desk = new ClaimDesk(node)
    await node.handle(CLAIM_PROTOCOL, (stream, connection) => { desk.onStream(stream, connection) })
    return desk
  }

  /** From now on requests are answered for this job; one job a node. */
  attach (ctx: CoordinatorContext): this {
    if (this.ctx !== undefined) throw new Error(`this node already coordinates job ${this.ctx.job.jobId}`)
    this.ctx = ctx
    return this
  }

  /** Takes no more streams, and ends those open. */
  async close (): Promise<void> {
    this.ctx = undefined
    desks.delete(this.node)
    await this.node.unhandle(CLAIM_PROTOCOL)
    for (const stream of this.streams) stream.abort(new Error('the job is over'))
  }

  private onStream (stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    if (!this.admit(stream, peer)) return
    this.streams.add(stream)
    stream.addEventListener('close', () => { this.streams.delete(stream) })
    this.serve(stream, connection).catch((err: unknown) => {
      stream.abort(err as Error)
      this.ctx?.reject(peer, 'malformed-claim', messageOf(err))
    })
  }

  /** Over its rate, a peer's stream is cut (the limit counts it). */
  private admit (stream: Stream, peer: string): boolean {
    if (this.ctx === undefined ? this.early.admit(peer) : this.ctx.admit(peer)) return true
    stream.abort(new Error('too many requests'))
    return false
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const requests = new Requests(stream)
    const peer = connection.remotePeer.toString()
    // Every request counts; the stream's arrival counted for its first.
    for (let first = true; ; first = false) {
      const req = await requests.next()
      if (req === undefined) break
      if (!first && !this.admit(stream, peer)) return
      const reply = this.ctx === undefined ? NOT_STARTED : await answer(this.ctx, req, connection)
      // A reply that cannot be sent: the worker is gone, not at fault.
      if (!await requests.reply(reply)) { stream.abort(new Error('reply not sent')); return }
    }
    await stream.close()
  }
}

/**
 * The requests on one stream. The wait for a request's first bytes has
 * no deadline (an open channel waits for work); from them on, the rest
 * of it has STREAM_IDLE_TIMEOUT_MS, as any message. A stream that ends
 * between requests (the worker stopped, its connection went) just ends.
 */
class Requests {
  private readonly lp: LengthPrefixedStream<Stream>
  /** Bytes that arrived, and those the requests read so far took. */
  private arrived = 0
  private taken = 0
  private ended = false
  private wake?: () => void

  constructor (stream: Stream) {
    // Registered before the framed reader's listener: both see every byte.
    stream.addEventListener('message', (evt) => { this.arrived += evt.data.byteLength; this.wake?.() })
    const end = (): void => { this.ended = true; this.wake?.() }
    stream.addEventListener('remoteCloseWrite', end)
    stream.addEventListener('close', end)
    this.lp = framed(stream)
  }

  /** The next request; undefined once the stream ended between requests. */
  async next (): Promise<ClaimRequest | undefined> {
    while (this.arrived === this.taken && !this.ended) {
      await new Promise<void>((resolve) => { this.wake = resolve })
    }
    this.wake = undefined
    if (this.arrived === this.taken) return undefined
    const bytes = await this.lp.read({ signal: AbortSignal.timeout(STREAM_IDLE_TIMEOUT_MS) })
    this.taken += varintLength(bytes.byteLength) + bytes.byteLength
    return ClaimRequestCodec.decode(bytes)
  }

  /** False when the reply could not be sent. */
  async reply (reply: ClaimReply): Promise<boolean> {
    return await writeMessage(this.lp, ClaimReplyCodec, reply).then(() => true, () => false)
  }
}

function varintLength (n: number): number {
  let bytes = 1
  for (let rest = n; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++
  return bytes
}

async function answer (ctx: CoordinatorContext, req: ClaimRequest,
  connection: Connection): Promise<ClaimReply> {
  const worker = connection.remotePeer.toString()
  if ('claim' in req) return await onClaim(ctx, req.claim, connection)
  if ('renewal' in req) return onRenewal(ctx, req.renewal, worker)
  if ('release' in req) return onRelease(ctx, req.release, worker)
  return onFailure(ctx, req.failure, worker)
}

function refuse (ctx: CoordinatorContext, worker: string, kind: string,
  reason: string): ClaimReply {
  ctx.reject(worker, kind, reason)
  return { ok: false, reason, leaseMs: 0, frames: [] }
}

async function onClaim (ctx: CoordinatorContext, claim: Claim,
  connection: Connection): Promise<ClaimReply> {
  const worker = connection.remotePeer.toString()
  const { job, state } = ctx
  if (!ctx.mayClaim(worker)) {
    return { ...refuse(ctx, worker, 'worker-not-allowed', 'this worker is not on the job\'s allow-list (--allow-worker)'), excluded: true }
  }
  if (claim.jobId !== job.jobId) return refuse(ctx, worker, 'unknown-job', `unknown job ${claim.jobId}`)
  if (!await verifyClaim(connection.remotePeer, claim)) {
    return refuse(ctx, worker, 'bad-signature', 'claim signature does not verify')
  }
  const nonce = hex(claim.nonce)
  if (ctx.seenNonces.has(nonce)) return refuse(ctx, worker, 'replayed-claim', 'claim was already used')
  if (Math.abs(Date.now() - claim.issuedAtMs) > CLAIM_MAX_AGE_MS) {
    return refuse(ctx, worker, 'stale-claim', 'claim is too old or from the future')
  }
  rememberNonce(ctx, nonce, claim.issuedAtMs)
  ctx.markPresent(worker, claim.capabilities)
  const unmet = unmetRequirements(job.requirements, claim.capabilities, ctx.node.peerId.toString())
  if (unmet.length > 0) return refuse(ctx, worker, 'unfit-worker', unmet.join('; '))

  const now = Date.now()
  const policy = ctx.scheduler.policy(worker, ctx.presentWorkers(), state.backlog().openFrames, now,
    state.framesLeftByHolder())
  const grant = state.grant(claim.chunkId, worker, now, policy)
  if (grant.released !== undefined) ctx.onChunkReleased(grant.released, worker)
  if (!grant.ok) return { ok: false, reason: grant.reason, leaseMs: 0, frames: [], wait: grant.wait === true }
  ctx.scheduler.granted(worker, now)
  ctx.onGranted(grant.chunkId, worker, grant.frames, grant.speculative === true)
  return {
    ok: true, reason: '', leaseMs: ctx.leaseMs, frames: grant.frames,
    chunkId: grant.chunkId, speculative: grant.speculative === true
  }
}

function onRenewal (ctx: CoordinatorContext, renewal: LeaseRenewal,
  worker: string): ClaimReply {
  if (renewal.jobId !== ctx.job.jobId) return refuse(ctx, worker, 'unknown-job', 'unknown job')
  const renewed = ctx.state.renew(renewal.chunkId, worker, Date.now())
  if (!renewed.ok) return { ok: false, reason: renewed.reason, leaseMs: 0, frames: [] }
  return { ok: true, reason: '', leaseMs: ctx.leaseMs, frames: renewed.frames }
}

function onRelease (ctx: CoordinatorContext, release: ChunkRelease,
  worker: string): ClaimReply {
  if (release.jobId !== ctx.job.jobId) return refuse(ctx, worker, 'unknown-job', 'unknown job')
  const chunk = ctx.state.release(release.chunkId, worker)
  if (chunk === undefined) {
    return refuse(ctx, worker, 'not-lease-holder', `worker does not hold chunk ${release.chunkId}`)
  }
  ctx.onChunkReleased(chunk.id, worker)
  return OK_EMPTY
}

function onFailure (ctx: CoordinatorContext, failure: ChunkFailure,
  worker: string): ClaimReply {
  if (failure.jobId !== ctx.job.jobId) return refuse(ctx, worker, 'unknown-job', 'unknown job')
  const chunk = ctx.state.fail(failure.chunkId, worker, failure.reason,
    failure.logTail, ctx.presentWorkers())
  if (chunk === undefined) {
    return refuse(ctx, worker, 'not-lease-holder', `worker does not hold chunk ${failure.chunkId}`)
  }
  ctx.onChunkFailed(chunk.id, worker, failure.reason, chunk.status === 'failed')
  return OK_EMPTY
}

/**
 * A nonce need only be remembered while its claim is young enough to be
 * accepted; older ones are forgotten, so a long job's memory stays flat.
 */
function rememberNonce (ctx: CoordinatorContext, nonce: string, issuedAtMs: number): void {
  ctx.seenNonces.set(nonce, issuedAtMs)
  if (ctx.seenNonces.size % 1024 !== 0) return
  const oldest = Date.now() - 2 * CLAIM_MAX_AGE_MS
  for (const [seen, at] of ctx.seenNonces) if (at < oldest) ctx.seenNonces.delete(seen)
}
