import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ANY_CHUNK, MAX_WORKER_FAILURES } from '../../src/common/constants.js'
import { newPeerKey } from '../../src/net/identity.js'
import type { JobAnnouncement } from '../../src/net/wire.js'
import { KnownJob } from '../../src/worker/known-job.js'

function announcement (chunks: number, leased = 0): JobAnnouncement {
  return {
    jobId: 'j', blend: { sha256: new Uint8Array(32), size: 1, name: 'x' },
    settings: { scene: 'Scene', format: 'PNG', width: 8, height: 8, engine: '', samples: 0, resolutionPercentage: 0, device: '' },
    requirements: { minBlender: '2.8', engine: 'CYCLES', device: 'CPU', denoiser: '' },
    openChunks: Array.from({ length: chunks }, (_, id) => ({ id, frames: [id] })),
    openCount: chunks, coordinatorAddrs: [], leaseMs: 30_000, leasedCount: leased,
    manifest: { sha256: new Uint8Array(32), size: 1, name: 'm' }
  }
}

describe('a job as a worker knows it', () => {
  it('stops claiming after its failures, also when one chunk is granted again and again', async () => {
    const coordinator = peerIdFromPrivateKey(await newPeerKey())
    const job = new KnownJob(coordinator, announcement(10))
    // A coordinator that answers every claim with chunk 0.
    for (let i = 0; i < MAX_WORKER_FAILURES; i++) {
      assert.notEqual(job.nextOffer(), undefined, `claim ${i + 1}`)
      job.failed(0)
      job.update(announcement(10))
    }
    assert.equal(job.nextOffer(), undefined)
  })

  it('does not offer a chunk it failed or was refused, and asks for a copy once all are taken', async () => {
    const coordinator = peerIdFromPrivateKey(await newPeerKey())
    const job = new KnownJob(coordinator, announcement(2, 1))
    job.failed(0)
    job.refused(1)
    assert.deepEqual(job.nextOffer(), { id: ANY_CHUNK, frames: [] })
    // At most one copy asked for per announcement period.
    assert.equal(job.nextOffer(), undefined)
  })
})
