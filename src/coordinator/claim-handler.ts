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
import { CLAIM_MAX_AGE_MS, CLAIM_PROTOCOL } from '../common/constants.js'
import { messageOf } from '../common/errors.js'
import { framed, readMessage, writeMessage } from '../net/streams.js'
import type { SwarmNode } from '../net/node.js'
import { verifyClaim } from '../net/signing.js'
import { hex } from '../net/fetch.js'
import {
  ClaimReplyCodec, ClaimRequestCodec, type Claim, type ClaimReply, type ClaimRequest,
  type ChunkFailure, type ChunkRelease, type LeaseRenewal
} from '../net/wire.js'
import type { CoordinatorContext } from './context.js'
import { saidNothing } from './serve.js'
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

  private constructor (private readonly node: SwarmNode) {}

  static async listen (node: SwarmNode): Promise<ClaimDesk> {
    const desk = new ClaimDesk(node)
    await node.handle(CLAIM_PROTOCOL, (stream, connection) => { desk.onStream(stream, connection) })
    return desk
  }

  /** From now on requests are answered for this job. */
  attach (ctx: CoordinatorContext): this {
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
    const admitted = this.ctx !== undefined
    if (admitted && !this.admit(stream, peer)) return
    this.streams.add(stream)
    stream.addEventListener('close', () => { this.streams.delete(stream) })
    this.serve(stream, connection, admitted).catch((err: unknown) => {
      stream.abort(err as Error)
      // Closed before a request's first byte, it said nothing: a worker
      // whose channel was idle, or one that gave up waiting.
      if (saidNothing(err) || this.ctx === undefined) return
      this.ctx.reject(peer, 'malformed-claim', messageOf(err))
    })
  }

  /** Over its rate, a peer's stream is cut (the limit counts it). */
  private admit (stream: Stream, peer: string): boolean {
    if (this.ctx === undefined || this.ctx.admit(peer)) return true
    stream.abort(new Error('too many requests'))
    return false
  }

  private async serve (stream: Stream, connection: Connection, admitted: boolean): Promise<void> {
    const lp = framed(stream)
    const peer = connection.remotePeer.toString()
    for (;;) {
      const req = await nextRequest(lp, stream)
      if (req === undefined) break
      // Every request counts; the stream's arrival counted for its first.
      if (!admitted && !this.admit(stream, peer)) return
      admitted = false
      const reply = this.ctx === undefined ? NOT_STARTED : await answer(this.ctx, req, connection)
      await writeMessage(lp, ClaimReplyCodec, reply)
    }
    await stream.close()
  }
}

/**
 * The next request, waited for as long as the worker keeps the stream
 * open; undefined once it closed it between requests.
 */
async function nextRequest (lp: LengthPrefixedStream<Stream>, stream: Stream): Promise<ClaimRequest | undefined> {
  try {
    // No deadline for the first byte: an open channel waits for work.
    return await readMessage(lp, ClaimRequestCodec, new AbortController().signal)
  } catch (err) {
    // Ended between requests, by the worker or its connection going.
    if (saidNothing(err) || stream.status === 'reset' || stream.status === 'aborted') return undefined
    throw err
  }
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
