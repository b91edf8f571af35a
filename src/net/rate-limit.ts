/**
 * Streams per peer per second, across a node's request protocols (claims,
 * results, chunk logs, fetches): a token bucket per peer. An honest worker
 * opens a few streams a second, and bursts of many small fetches when a
 * scene has thousands of cache files; a peer that keeps asking faster than
 * the bucket refills is flooding, and is cut off: its connection closed
 * and its streams refused for a while.
 */
import { logger } from '../common/log.js'
import type { SwarmNode } from './node.js'

const log = logger('net')

export interface RateLimitOptions {
  /** Streams per second a peer may open, sustained. */
  perSecond: number
  /** Streams it may open at once before the rate applies. */
  burst: number
  /** Refused streams in a row that make a peer a flooder. */
  cutOffAfter: number
  /** How long a flooder is refused. */
  blockMs: number
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = {
  perSecond: 50,
  burst: 500,
  cutOffAfter: 200,
  blockMs: 60_000
}

/** Bounded: a flood of fresh peer IDs must not grow memory. */
const MAX_TRACKED_PEERS = 10_000

interface Bucket { tokens: number, at: number, refused: number, blockedUntil: number }

export class PeerRateLimit {
  private readonly buckets = new Map<string, Bucket>()

  constructor (private readonly node: SwarmNode,
    private readonly opts: RateLimitOptions = DEFAULT_RATE_LIMIT,
    private readonly onCutOff: (peer: string) => void = () => {}) {}

  /** May this peer open one more stream now? */
  admit (peer: string, now = Date.now()): boolean {
    const bucket = this.bucketOf(peer, now)
    if (bucket.blockedUntil > now) return false
    bucket.tokens = Math.min(this.opts.burst, bucket.tokens + (now - bucket.at) * this.opts.perSecond / 1000)
    bucket.at = now
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      bucket.refused = 0
      return true
    }
    if (++bucket.refused >= this.opts.cutOffAfter) this.cutOff(peer, bucket, now)
    return false
  }

  private cutOff (peer: string, bucket: Bucket, now: number): void {
    bucket.blockedUntil = now + this.opts.blockMs
    bucket.refused = 0
    log.warn('peer is flooding, cutting it off', { peer, seconds: this.opts.blockMs / 1000 })
    this.onCutOff(peer)
    const id = this.node.getConnections().find(c => c.remotePeer.toString() === peer)?.remotePeer
    if (id !== undefined) void this.node.hangUp(id).catch(() => {})
  }

  private bucketOf (peer: string, now: number): Bucket {
    let bucket = this.buckets.get(peer)
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_TRACKED_PEERS) this.forgetIdle(now)
      if (this.buckets.size >= MAX_TRACKED_PEERS) this.buckets.delete(this.buckets.keys().next().value as string)
      bucket = { tokens: this.opts.burst, at: now, refused: 0, blockedUntil: 0 }
      this.buckets.set(peer, bucket)
    }
    return bucket
  }

  /** Drops peers whose bucket is full again and who are not blocked. */
  private forgetIdle (now: number): void {
    const fullAfterMs = this.opts.burst / this.opts.perSecond * 1000
    for (const [peer, bucket] of this.buckets) {
      if (bucket.blockedUntil <= now && now - bucket.at > fullAfterMs) this.buckets.delete(peer)
    }
  }
}
