import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ChunkProgressCodec } from '../../src/net/wire.js'

const report = { jobId: 'job-1', chunkId: 3, frame: -5, sample: 12, samples: 64, status: 'Sample 12/64' }

describe('ChunkProgress on the wire', () => {
  it('survives encoding, negative frames included', () => {
    assert.deepEqual(ChunkProgressCodec.decode(ChunkProgressCodec.encode(report)), report)
  })

  it('refuses a job id that could name a path, a long status and counts that do not add up', () => {
    for (const bad of [{ ...report, jobId: '../x' }, { ...report, status: 'x'.repeat(201) }, { ...report, sample: 65 }]) {
      assert.throws(() => ChunkProgressCodec.decode(ChunkProgressCodec.encode(bad)), { name: 'WireError' })
    }
  })
})
