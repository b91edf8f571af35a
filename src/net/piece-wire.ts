/**
 * The messages of the pieces protocol (proto/blendnet.proto, PieceRequest
 * and PieceReply), checked at decoding like every wire message.
 */
import { MAX_CONTROL_MESSAGE_BYTES } from '../common/constants.js'
import { WireError } from '../common/errors.js'
import { codec } from './wire.js'

export type PieceRequestKind = 'have' | 'span' | 'peers'

export interface PieceRequest {
  coordinator: string
  jobId: string
  sha256: Uint8Array
  kind: PieceRequestKind
  first: number
  count: number
}

export interface PeerAddrs { id: string, addrs: Uint8Array[] }

export interface PieceReply {
  ok: boolean
  reason: string
  have: Uint8Array
  fetching: Uint8Array
  peers: PeerAddrs[]
}

/** The most pieces one span request may ask for. */
export const MAX_SPAN_PIECES = 64
const MAX_PEERS = 32
const MAX_ADDRS = 16
const KINDS = new Set(['have', 'span', 'peers'])
/** Peer IDs and job ids: letters and digits, '-' and '_' (base58 fits). */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/

function require (condition: boolean, what: string): void {
  if (!condition) throw new WireError(what)
}

export const PieceRequestCodec = codec<PieceRequest>(
  'PieceRequest', MAX_CONTROL_MESSAGE_BYTES, (r) => {
    require(SAFE_ID.test(r.coordinator), 'piece request with a malformed coordinator')
    require(SAFE_ID.test(r.jobId), 'piece request with a malformed job id')
    require(r.sha256.byteLength === 32, 'piece request hash is not a SHA-256 hash')
    require(KINDS.has(r.kind), `unknown piece request kind ${JSON.stringify(r.kind.slice(0, 32))}`)
    if (r.kind === 'span') {
      require(r.count >= 1 && r.count <= MAX_SPAN_PIECES, `a span of ${r.count} pieces`)
    }
  })

export const PieceReplyCodec = codec<PieceReply>(
  'PieceReply', MAX_CONTROL_MESSAGE_BYTES, (r) => {
    require(r.reason.length <= 4096, 'piece reply reason too long')
    require(r.peers.length <= MAX_PEERS, 'piece reply names too many peers')
    for (const peer of r.peers) {
      require(SAFE_ID.test(peer.id), 'piece reply names a malformed peer')
      require(peer.addrs.length <= MAX_ADDRS && peer.addrs.every(a => a.byteLength <= 512),
        'piece reply gives too many or too long addresses')
    }
  })
