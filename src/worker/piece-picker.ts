/**
 * Which pieces to ask for next, and from whom. The coordinator's upload
 * is what sharing saves, so:
 *
 * 1. A piece some other worker holds comes from a worker: the rarest
 *    among the next few in this worker's order, from the holder with the
 *    fewest requests in flight.
 * 2. Only a piece no other worker holds or is fetching comes from the
 *    coordinator (`othersFetchingCount: false` lifts the second part, for
 *    a worker that has waited long enough on the others).
 *
 * Each worker walks the pieces in its own random order of span-aligned
 * blocks, so that workers starting together ask the coordinator for
 * different pieces and the spans stay whole.
 */
import type { Bitfield } from '../net/pieces.js'

export interface SourceView {
  coordinator: boolean
  /** Pieces it holds; undefined until it has said. The coordinator holds all. */
  have?: Bitfield
  /** Pieces it is fetching now. */
  fetching?: Bitfield
  inFlight: number
  capacity: number
  /** False while it is backing off after a failure. */
  usable: boolean
}

export interface SpanPick<S extends SourceView> { source: S, first: number, count: number }

export interface PickOptions {
  spanPieces: number
  /** Pieces other workers are fetching keep the coordinator away. */
  othersFetchingCount: boolean
  random?: () => number
}

/** Candidates weighed for rarity per pick: bounds the work per pick. */
const RARITY_WINDOW = 64

/** All pieces in a random order of whole blocks of `spanPieces`. */
export function blockOrder (pieces: number, spanPieces: number,
  random: () => number = Math.random): number[] {
  const blocks = Array.from({ length: Math.ceil(pieces / spanPieces) }, (_, i) => i)
  for (let i = blocks.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [blocks[i], blocks[j]] = [blocks[j], blocks[i]]
  }
  return blocks.flatMap(b => Array.from({ length: Math.min(spanPieces, pieces - b * spanPieces) },
    (_, k) => b * spanPieces + k))
}

/** `needed(i)`: not held here and not in flight here. */
export function pickSpan<S extends SourceView> (order: readonly number[],
  needed: (index: number) => boolean, sources: readonly S[],
  opts: PickOptions): SpanPick<S> | undefined {
  const random = opts.random ?? Math.random
  const peers = sources.filter(s => !s.coordinator && s.usable && s.have !== undefined)
  const fromPeer = pickFromPeers(order, needed, peers, opts.spanPieces, random)
  if (fromPeer !== undefined) return fromPeer

  const coordinator = sources.find(s => s.coordinator && s.usable && s.inFlight < s.capacity)
  if (coordinator === undefined) return undefined
  const unclaimed = (i: number): boolean => needed(i) && !peers.some(p =>
    p.have?.has(i) === true || (opts.othersFetchingCount && p.fetching?.has(i) === true))
  const first = order.find(unclaimed)
  if (first === undefined) return undefined
  return { source: coordinator, first, count: extend(first, unclaimed, opts.spanPieces, order.length) }
}

function pickFromPeers<S extends SourceView> (order: readonly number[],
  needed: (index: number) => boolean, peers: S[], spanPieces: number,
  random: () => number): SpanPick<S> | undefined {
  const free = peers.filter(p => p.inFlight < p.capacity)
  if (free.length === 0) return undefined
  let best: number | undefined
  let bestHolders = Infinity
  let weighed = 0
  for (const i of order) {
    if (!needed(i) || !free.some(p => p.have?.has(i) === true)) continue
    const holders = peers.filter(p => p.have?.has(i) === true).length
    if (holders < bestHolders) { best = i; bestHolders = holders }
    if (++weighed >= RARITY_WINDOW) break
  }
  if (best === undefined) return undefined
  const first = best
  const holders = free.filter(p => p.have?.has(first) === true)
  const least = Math.min(...holders.map(p => p.inFlight))
  const idle = holders.filter(p => p.inFlight === least)
  const source = idle[Math.floor(random() * idle.length)]
  const ok = (i: number): boolean => needed(i) && source.have?.has(i) === true
  return { source, first, count: extend(first, ok, spanPieces, order.length) }
}

/** Consecutive pieces from `first` that pass `ok`, up to `max`. */
function extend (first: number, ok: (i: number) => boolean, max: number, pieces: number): number {
  let count = 1
  while (count < max && first + count < pieces && ok(first + count)) count++
  return count
}
