/**
 * The coordinator's side of /blendnet/claim: signed claims, lease
 * renewals and failure reports from workers, one request per stream.
 * The peer on the other end of the (noise-authenticated) connection is
 * the worker; a claim must also carry that peer's signature.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { CLAIM_MAX_AGE_MS, CLAIM_PROTOCOL } from '../common/constants.js'
import { framed, readMessage, writeMessage } from '../net/streams.js'
import { verifyClaim } from '../net/signing.js'
import { hex } from '../net/fetch.js'
import {
  ClaimReplyCodec, ClaimRequestCodec, type Claim, type ClaimReply,
  type ChunkFailure, type ChunkRelease, type LeaseRenewal
} from '../net/wire.js'
import type { CoordinatorContext } from './context.js'
import { serve } from './serve.js'
import { unmetRequirements } from '../job/requirements.js'

const OK_EMPTY: ClaimReply = { ok: true, reason: '', leaseMs: 0, frames: [] }

export async function registerClaimHandler (ctx: CoordinatorContext): Promise<void> {
  await serve(ctx, CLAIM_PROTOCOL, 'malformed-claim', handle)
}

async function handle (ctx: CoordinatorContext, stream: Stream,
  connection: Connection): Promise<void> {
  const lp = framed(stream)
  const req = await readMessage(lp, ClaimRequestCodec)
  const worker = connection.remotePeer.toString()
  let reply: ClaimReply
  if ('claim' in req) {
    reply = await onClaim(ctx, req.claim, connection)
  } else if ('renewal' in req) {
    reply = onRenewal(ctx, req.renewal, worker)
  } else if ('release' in req) {
    reply = onRelease(ctx, req.release, worker)
  } else {
    reply = onFailure(ctx, req.failure, worker)
  }
  await writeMessage(lp, ClaimReplyCodec, reply)
  await stream.close()
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
