import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { cpuWorker } from '../helpers/capabilities.js'
import { newPeerKey } from '../../src/net/identity.js'
import { signClaim, verifyClaim } from '../../src/net/signing.js'

describe('claim signatures', () => {
  it('verify against the peer that signed', async () => {
    const key = await newPeerKey()
    const claim = await signClaim(key, { jobId: 'job', chunkId: 3, capabilities: cpuWorker() })
    assert.equal(await verifyClaim(peerIdFromPrivateKey(key), claim), true)
  })

  it('do not verify against another peer', async () => {
    const claim = await signClaim(await newPeerKey(), { jobId: 'job', chunkId: 3, capabilities: cpuWorker() })
    assert.equal(await verifyClaim(peerIdFromPrivateKey(await newPeerKey()), claim), false)
  })

  it('do not carry over to another chunk or job', async () => {
    const key = await newPeerKey()
    const peer = peerIdFromPrivateKey(key)
    const claim = await signClaim(key, { jobId: 'job', chunkId: 3, capabilities: cpuWorker() })
    assert.equal(await verifyClaim(peer, { ...claim, chunkId: 4 }), false)
    assert.equal(await verifyClaim(peer, { ...claim, jobId: 'other' }), false)
    assert.equal(await verifyClaim(peer, { ...claim, signature: new Uint8Array(64) }), false)
  })

  it('use a fresh nonce each time', async () => {
    const key = await newPeerKey()
    const a = await signClaim(key, { jobId: 'job', chunkId: 3, capabilities: cpuWorker() })
    const b = await signClaim(key, { jobId: 'job', chunkId: 3, capabilities: cpuWorker() })
    assert.notDeepEqual(a.nonce, b.nonce)
  })
})
