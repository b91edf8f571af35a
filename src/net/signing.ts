/**
 * Claim signatures. A claim is signed with the worker's peer key over a
 * domain prefix and the claim's own bytes (job, chunk, nonce, time), so it
 * proves who asked and cannot be replayed for another job or chunk.
 * Ed25519 peer IDs embed the public key: the coordinator verifies against
 * the peer it is talking to, with nothing else to look up.
 */
import { randomBytes } from 'node:crypto'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { ClaimCodec, type Claim } from './wire.js'

const CLAIM_DOMAIN = new TextEncoder().encode('blendnet/claim/v1\n')

function signedBytes (claim: Claim): Uint8Array {
  const body = ClaimCodec.encode({ ...claim, signature: new Uint8Array(0) })
  const bytes = new Uint8Array(CLAIM_DOMAIN.byteLength + body.byteLength)
  bytes.set(CLAIM_DOMAIN)
  bytes.set(body, CLAIM_DOMAIN.byteLength)
  return bytes
}

export async function signClaim (key: PrivateKey,
  fields: Omit<Claim, 'signature' | 'nonce' | 'issuedAtMs'>): Promise<Claim> {
  const claim: Claim = {
    ...fields,
    nonce: randomBytes(16),
    issuedAtMs: Date.now(),
    signature: new Uint8Array(0)
  }
  return { ...claim, signature: await key.sign(signedBytes(claim)) }
}

/** True when `peer` signed exactly this claim. */
export async function verifyClaim (peer: PeerId, claim: Claim): Promise<boolean> {
  const publicKey = peer.publicKey
  if (publicKey === undefined) return false
  try {
    return await publicKey.verify(signedBytes(claim), claim.signature)
  } catch {
    return false
  }
}
