import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { PROTOCOL_VERSION } from '../../src/common/constants.js'
import { WireError } from '../../src/common/errors.js'
import { cpuWorker } from '../helpers/capabilities.js'
import {
  ClaimReplyCodec, ClaimRequestCodec, FrameResultCodec, JobManifestCodec, decodeSwarmMessage, encodeSwarmMessage
} from '../../src/net/wire.js'

const HASH = new Uint8Array(32).fill(7)

const announcement = {
  job: {
    jobId: 'abc123',
    blend: { sha256: HASH, size: 1234, name: 'scene.blend' },
    settings: { scene: 'Scene', format: 'PNG', width: 64, height: 36, engine: '', samples: 0, resolutionPercentage: 0, device: '', allowMissing: true },
    requirements: { minBlender: '3.4', engine: 'CYCLES', device: 'CPU', denoiser: '', scripts: false, jobBytes: 5_000_000_000 },
    openChunks: [{ id: 0, frames: [-5, -4, 0, 1] }],
    openCount: 1,
    priority: -5,
    leasedCount: 2,
    framesTotal: 4,
    framesDone: 1,
    coordinatorAddrs: [],
    leaseMs: 30_000,
    manifest: { sha256: HASH, size: 99, name: 'manifest' }
  }
}

/** Only WireError may escape a decoder, whatever the bytes. */
function decodesOrRefuses (decode: () => unknown): boolean {
  try {
    decode()
    return true
  } catch (err) {
    return err instanceof WireError
  }
}

describe('wire messages', () => {
  it('a job announcement survives encoding, negative frames included', () => {
    const decoded = decodeSwarmMessage(encodeSwarmMessage(announcement))
    assert.ok(decoded !== undefined && 'job' in decoded)
    const { blend, manifest, ...rest } = decoded.job
    const { blend: sent, manifest: sentManifest, ...sentRest } = announcement.job
    assert.deepEqual(rest, sentRest)
    assert.equal(manifest.size, sentManifest.size)
    assert.deepEqual(new Uint8Array(blend.sha256), sent.sha256)
    assert.equal(blend.size, sent.size)
  })

  it('a claim reply tells chunk 0 from no chunk named, as older coordinators send it', () => {
    const base = { ok: true, reason: '', leaseMs: 1000, frames: [3, 2] }
    assert.equal(ClaimReplyCodec.decode(ClaimReplyCodec.encode(base)).chunkId, undefined)
    const zero = ClaimReplyCodec.decode(ClaimReplyCodec.encode({ ...base, chunkId: 0, speculative: true }))
    assert.deepEqual([zero.chunkId, zero.speculative, zero.frames], [0, true, [3, 2]])
  })

  it('a message of another protocol version is not ours', () => {
    const other = encodeSwarmMessage(announcement)
    other[1] = PROTOCOL_VERSION + 1 // field 1 (version) is the first varint
    assert.equal(decodeSwarmMessage(other), undefined)
  })

  it('ignores, never rejects, a message of another version that breaks this version\'s rules', () => {
    const unsafeId = encodeSwarmMessage({ job: { ...announcement.job, jobId: '../../x' } })
    assert.throws(() => decodeSwarmMessage(unsafeId), WireError)
    unsafeId[1] = PROTOCOL_VERSION + 1
    assert.equal(decodeSwarmMessage(unsafeId), undefined)
  })

  it('refuses an oversized gossip message before parsing it', () => {
    assert.throws(() => decodeSwarmMessage(new Uint8Array(70_000)), WireError)
  })

  it('refuses a claim request that asks for nothing', () => {
    assert.throws(() => ClaimRequestCodec.decode(new Uint8Array(0)), WireError)
  })

  it('refuses a manifest whose paths are relative or climb out with ..', () => {
    const file = (path: string) => ({ path, sha256: HASH, size: 1 })
    const good = { blendPath: '/home/ann/scene.blend', files: [file('/home/ann/scene.blend'), file('C:\\tex\\wood.png')], dependencies: [] }
    assert.equal(JobManifestCodec.decode(JobManifestCodec.encode(good)).files.length, 2)
    for (const bad of ['/' + '../'.repeat(30) + 'tmp/pwned.txt', 'tex/wood.png', '/a/./b', 'C:\\..\\x', '/a/b\0c']) {
      const manifest = { ...good, files: [file(bad)] }
      assert.throws(() => JobManifestCodec.decode(JobManifestCodec.encode(manifest)), WireError, bad)
    }
    assert.throws(() => JobManifestCodec.decode(JobManifestCodec.encode({ ...good, blendPath: '../../x.blend' })), WireError)
  })

  it('refuses an unsigned claim', () => {
    const bytes = ClaimRequestCodec.encode({
      claim: { jobId: 'j', chunkId: 1, nonce: new Uint8Array(16), issuedAtMs: 1, capabilities: cpuWorker(), signature: new Uint8Array(0) }
    })
    assert.throws(() => ClaimRequestCodec.decode(bytes), /not signed/)
  })

  it('refuses a frame result whose hash is not SHA-256 sized', () => {
    const bytes = FrameResultCodec.encode({ jobId: 'j', chunkId: 0, frame: 1, size: 10, sha256: new Uint8Array(5) })
    assert.throws(() => FrameResultCodec.decode(bytes), WireError)
  })

  it('decoders only ever throw WireError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) =>
      decodesOrRefuses(() => decodeSwarmMessage(bytes)) &&
      decodesOrRefuses(() => ClaimRequestCodec.decode(bytes)) &&
      decodesOrRefuses(() => FrameResultCodec.decode(bytes))
    ), { numRuns: 2000 })
  })

  it('decoders only ever throw WireError on mutated valid messages', () => {
    const valid = encodeSwarmMessage(announcement)
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      fc.nat(valid.length),
      (edits, cut) => {
        const bytes = valid.slice(0, Math.max(1, cut))
        for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value
        return decodesOrRefuses(() => decodeSwarmMessage(bytes))
      }), { numRuns: 2000 })
  })
})
