import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { WireError } from '../../src/common/errors.js'
import { Bitfield, hashPieces, pieceRange } from '../../src/net/pieces.js'
import { JobManifestCodec, type ManifestFile } from '../../src/net/wire.js'
import { blockOrder, pickSpan, type SourceView } from '../../src/worker/piece-picker.js'
import { tempDir } from '../helpers/swarm.js'

const KiB = 1024
const sha = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest()

describe('pieces of a file', () => {
  it('hashes the whole file and each piece in one read, the last piece shorter', async () => {
    const dir = await tempDir()
    const bytes = randomBytes(40 * KiB)
    await writeFile(join(dir, 'f'), bytes)
    const hashed = await hashPieces(join(dir, 'f'), 16 * KiB)
    await rm(dir, { recursive: true })

    assert.equal(hashed.size, 40 * KiB)
    assert.deepEqual(Buffer.from(hashed.sha256), sha(bytes))
    assert.equal(hashed.pieceHashes.length, 3)
    for (let i = 0; i < 3; i++) {
      const { start, end } = pieceRange(i, bytes.length, 16 * KiB)
      assert.deepEqual(Buffer.from(hashed.pieceHashes[i]), sha(bytes.subarray(start, end)))
    }
    assert.deepEqual(pieceRange(2, bytes.length, 16 * KiB), { start: 32 * KiB, end: 40 * KiB })
  })

  it('keeps one bit per piece, ignores bits past the last piece, refuses a wrong length', () => {
    const field = new Bitfield(10)
    field.set(0)
    field.set(9)
    field.set(9)
    assert.equal(field.count, 2)
    assert.deepEqual([...field.bytes], [0x80, 0x40])

    const received = new Bitfield(10, new Uint8Array([0xff, 0xff]))
    assert.equal(received.count, 10)
    assert.equal(received.full, true)
    assert.throws(() => new Bitfield(10, new Uint8Array(3)), WireError)
  })

  it('a manifest must list exactly one 32-byte hash per piece, of a sane piece size', () => {
    const good: ManifestFile = {
      path: '/a/scene.blend', sha256: new Uint8Array(32), size: 40 * KiB, pieceBytes: 16 * KiB,
      pieceHashes: [new Uint8Array(32), new Uint8Array(32), new Uint8Array(32)]
    }
    const manifest = (file: ManifestFile): Uint8Array =>
      JobManifestCodec.encode({ blendPath: '/a/scene.blend', files: [file], dependencies: [] })
    assert.equal(JobManifestCodec.decode(manifest(good)).files[0].pieceHashes?.length, 3)
    assert.equal(JobManifestCodec.decode(manifest({ ...good, pieceBytes: 0, pieceHashes: [] })).files[0].pieceBytes, 0)
    const bad: Array<Partial<ManifestFile>> = [
      { pieceHashes: good.pieceHashes?.slice(1) },
      { pieceBytes: 24 * KiB },
      { pieceBytes: 1024 },
      { pieceHashes: [new Uint8Array(32), new Uint8Array(32), new Uint8Array(31)] },
      { pieceBytes: 0 }
    ]
    for (const change of bad) {
      assert.throws(() => JobManifestCodec.decode(manifest({ ...good, ...change })), WireError, JSON.stringify(Object.keys(change)))
    }
  })
})

function source (coordinator: boolean, held: number[], opts: Partial<SourceView> = {}): SourceView {
  const have = new Bitfield(16)
  for (const i of held) have.set(i)
  return { coordinator, have, inFlight: 0, capacity: 2, usable: true, ...opts }
}

const all = Array.from({ length: 16 }, (_, i) => i)
const coordinator = (): SourceView => source(true, all)
const needed = (missing: number[]) => (i: number) => missing.includes(i)
const opts = { spanPieces: 4, othersFetchingCount: true, random: () => 0 }

describe('picking pieces', () => {
  it('walks whole blocks in a random order', () => {
    const order = blockOrder(10, 4)
    assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i))
    for (const start of [0, 4, 8]) {
      const at = order.indexOf(start)
      const block = order.slice(at, at + Math.min(4, 10 - start))
      assert.deepEqual(block, Array.from({ length: block.length }, (_, k) => start + k))
    }
  })

  it('takes a piece another worker holds from that worker, not the coordinator', () => {
    const peer = source(false, [4, 5, 6])
    const pick = pickSpan(all, needed([4, 5, 6, 7]), [coordinator(), peer], opts)
    assert.equal(pick?.source, peer)
    assert.deepEqual([pick?.first, pick?.count], [4, 3])
  })

  it('prefers the rarest piece among workers', () => {
    const a = source(false, [0, 1, 2, 3, 8])
    const b = source(false, [0, 1, 2, 3])
    const pick = pickSpan(all, needed([0, 8]), [coordinator(), a, b], opts)
    assert.deepEqual([pick?.source, pick?.first], [a, 8])
  })

  it('asks the coordinator only for pieces no worker holds or is fetching', () => {
    const fetching = new Bitfield(16)
    for (const i of [0, 1, 2, 3]) fetching.set(i)
    const busy = source(false, [4], { inFlight: 2, fetching })
    const pick = pickSpan(all, needed([0, 1, 2, 3, 4, 8, 9]), [coordinator(), busy], opts)
    assert.equal(pick?.source.coordinator, true)
    assert.deepEqual([pick?.first, pick?.count], [8, 2])
  })

  it('waits rather than ask the coordinator for what others fetch, until it has waited enough', () => {
    const fetching = new Bitfield(16)
    fetching.set(0)
    const peer = source(false, [], { fetching })
    assert.equal(pickSpan(all, needed([0]), [coordinator(), peer], opts), undefined)
    const pick = pickSpan(all, needed([0]), [coordinator(), peer], { ...opts, othersFetchingCount: false })
    assert.equal(pick?.source.coordinator, true)
  })

  it('asks nobody whose requests are at capacity or who is backing off', () => {
    const full = source(true, all, { inFlight: 2 })
    const resting = source(false, [0], { usable: false })
    assert.equal(pickSpan(all, needed([0, 1]), [full, resting], opts), undefined)
  })
})
