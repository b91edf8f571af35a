/**
 * Shared transfers between real libp2p nodes on 127.0.0.1: workers fetch
 * a job's files in verified pieces from each other and from the
 * coordinator, which then uploads the scene about once rather than once
 * per worker; a peer that sends a corrupt piece is caught and the piece
 * fetched elsewhere; a connection cut mid-file resumes from the pieces
 * already verified.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { afterEach, describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import type { ChunkRenderRequest, ChunkRenderResult } from '../../src/blender/driver.js'
import {
  FETCH_PROTOCOL, PIECE_BYTES, PIECES_PROTOCOL, SPAN_PIECES, SPANS_TO_COORDINATOR
} from '../../src/common/constants.js'
import { hashFile, hex } from '../../src/net/fetch.js'
import type { SwarmNode } from '../../src/net/node.js'
import { askHave, askPeers, fetchSpan, PieceRefusedError } from '../../src/net/piece-client.js'
import { JobManifestCodec, type ManifestFile } from '../../src/net/wire.js'
import { FileSharing } from '../../src/worker/file-sharing.js'
import { HeldFile } from '../../src/worker/held-file.js'
import { PieceFetch } from '../../src/worker/piece-fetcher.js'
import { WorkDir } from '../../src/worker/work-dir.js'
import { countBytesSent } from '../helpers/bytes-sent.js'
import { RendersSolidPngs } from '../helpers/fake-renderers.js'
import {
  addrOf, HEIGHT, startJob, startNode, startWorker, stopAll, tempDir, WIDTH, type TestJob
} from '../helpers/swarm.js'

const MiB = 1024 * 1024

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})

/** Renders only once `workers` renders have started: every worker takes one chunk. */
class RendersOnceEveryWorkerStarted extends RendersSolidPngs {
  static started = 0
  static everyone?: Promise<void>
  static release?: () => void

  constructor (private readonly workers: number) {
    super(WIDTH, HEIGHT)
  }

  override async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    const self = RendersOnceEveryWorkerStarted
    if (++self.started >= this.workers) self.release?.()
    await self.everyone
    return await super.render(req)
  }
}

async function runningJob (sceneBytes: number, frames: number): Promise<TestJob & { sent: { total: number } }> {
  const job = await startJob(Array.from({ length: frames }, (_, i) => i + 1), 1, { sceneBytes })
  const sent = countBytesSent(job.node, [FETCH_PROTOCOL, PIECES_PROTOCOL])
  const run = job.coordinator.run()
  cleanups.push(async () => {
    job.coordinator.cancel('test over')
    await run
    await job.node.stop()
    await rm(dirname(job.outputDir), { recursive: true, force: true })
  })
  return { ...job, sent }
}

function sceneOf (job: TestJob): ManifestFile {
  return JobManifestCodec.decode(job.spec.manifest.bytes).files[0]
}

/** A node with FileSharing, knowing the job, connected to its coordinator. */
async function sharingPeer (job: TestJob,
  onPiece?: (hash: string, index: number, from: string) => void): Promise<{ node: SwarmNode, sharing: FileSharing, workDir: WorkDir }> {
  const node = await startNode()
  const workDir = await WorkDir.open(await tempDir('blendnet-sharing-'))
  const sharing = new FileSharing(node, workDir, onPiece)
  await sharing.start()
  sharing.addJob(job.node.peerId.toString(), job.spec.jobId, [sceneOf(job)])
  await node.dial(multiaddr(addrOf(job.node)))
  cleanups.push(async () => {
    await sharing.stop()
    await node.stop()
    await rm(workDir.root, { recursive: true, force: true })
  })
  return { node, sharing, workDir }
}

describe('shared transfers', { timeout: 180_000 }, () => {
  it('4 workers fetch a 64 MiB scene while the coordinator uploads it at most twice', async () => {
    const size = 64 * MiB
    const job = await runningJob(size, 4)
    RendersOnceEveryWorkerStarted.started = 0
    RendersOnceEveryWorkerStarted.everyone = new Promise(resolve => { RendersOnceEveryWorkerStarted.release = resolve })
    const workers = []
    for (let i = 0; i < 4; i++) {
      const w = await startWorker(new RendersOnceEveryWorkerStarted(4), [addrOf(job.node)])
      cleanups.push(async () => {
        await stopAll(w.worker, w.node)
        await rm(w.workDir.root, { recursive: true, force: true })
      })
      workers.push(w)
    }

    await RendersOnceEveryWorkerStarted.everyone
    const scene = sceneOf(job)
    for (const w of workers) {
      assert.deepEqual(await hashFile(w.workDir.blobPath(hex(scene.sha256))), scene.sha256)
    }
    console.log(`# coordinator sent ${(job.sent.total / MiB).toFixed(1)} MiB for a ${size / MiB} MiB scene to 4 workers`)
    assert.ok(job.sent.total <= 2 * size,
      `the coordinator sent ${(job.sent.total / size).toFixed(2)} times the scene's size`)
  })

  it('a peer that sends corrupt pieces is dropped and the pieces come from elsewhere', async () => {
    const job = await runningJob(16 * MiB, 1)
    const scene = sceneOf(job)
    const hash = hex(scene.sha256)
    const liar = await sharingPeer(job)
    // The liar's copy was altered after it was verified: it still offers every piece.
    const altered = await readFile(job.spec.blend.path)
    altered[3 * MiB + 5] ^= 0xff
    await writeFile(liar.workDir.blobPath(hash), altered)
    liar.sharing.holdComplete(scene)
    const address = { coordinator: job.node.peerId.toString(), jobId: job.spec.jobId, sha256: scene.sha256 }
    await askPeers(liar.node, job.node.peerId, address) // the tracker now names the liar

    const from = new Map<number, string>()
    const honest = await sharingPeer(job, (_hash, index, peer) => { from.set(index, peer) })
    await honest.sharing.fetch(job.node.peerId, job.spec.jobId, scene)

    assert.deepEqual(await hashFile(honest.workDir.blobPath(hash)), scene.sha256)
    assert.ok(liar.sharing.bytesServed > 0, 'the liar was asked for pieces')
    assert.equal(from.size, scene.pieceHashes?.length)
    // The liar holds every piece, so every piece is asked of it until it is caught.
    assert.equal(from.get(3), job.node.peerId.toString(), 'the corrupt piece came from the coordinator')
  })

  it('a connection cut mid-file resumes from the pieces already verified', async () => {
    const size = 32 * MiB
    const job = await runningJob(size, 1)
    const scene = sceneOf(job)
    const verified = new Map<number, number>()
    let cut = false
    const worker = await sharingPeer(job, (_hash, index) => {
      verified.set(index, (verified.get(index) ?? 0) + 1)
      if (verified.size === 10 && !cut) {
        cut = true
        void worker.node.hangUp(job.node.peerId)
      }
    })
    const piecesSentBefore = job.sent.total
    await worker.sharing.fetch(job.node.peerId, job.spec.jobId, scene)

    assert.equal(cut, true)
    assert.deepEqual(await hashFile(worker.workDir.blobPath(hex(scene.sha256))), scene.sha256)
    assert.equal(verified.size, scene.pieceHashes?.length)
    assert.ok([...verified.values()].every(n => n === 1), 'no piece was verified twice')
    // Lost to the cut: at most the spans that were in flight.
    const lost = job.sent.total - piecesSentBefore - size
    assert.ok(lost <= SPANS_TO_COORDINATOR * SPAN_PIECES * PIECE_BYTES + MiB, `${lost} bytes sent twice`)
  })

  it('a fetch that failed outright resumes, in its next attempt, from the pieces it verified', async () => {
    const size = 16 * MiB
    const job = await runningJob(size, 1)
    const scene = sceneOf(job)
    const { node, workDir } = await sharingPeer(job)
    const held = new HeldFile(scene.sha256, scene.size,
      { pieceBytes: scene.pieceBytes ?? 0, hashes: scene.pieceHashes ?? [] }, workDir.blobPath(hex(scene.sha256)))
    const verified = new Map<number, number>()
    const stop = new AbortController()
    const attempt = (signal?: AbortSignal): PieceFetch => new PieceFetch({
      node, coordinator: job.node.peerId, jobId: job.spec.jobId, file: held, distrusted: new Set(), signal,
      onPiece: (index) => {
        verified.set(index, (verified.get(index) ?? 0) + 1)
        if (verified.size === 6) stop.abort()
      }
    })

    await assert.rejects(attempt(stop.signal).run(), /fetch stopped/)
    const kept = held.held.count
    assert.ok(kept >= 6 && kept < held.held.size, `${kept} pieces kept`)
    await attempt().run()

    assert.deepEqual(await hashFile(workDir.blobPath(hex(scene.sha256))), scene.sha256)
    assert.equal(verified.size, held.held.size)
    assert.ok([...verified.values()].every(n => n === 1), 'no piece was fetched twice')
  })

  it('a worker answers only for jobs it knows, and serves only pieces it holds', async () => {
    const job = await runningJob(4 * MiB, 1)
    const scene = sceneOf(job)
    const holder = await sharingPeer(job)
    const stranger = await startNode()
    cleanups.push(async () => { await stranger.stop() })
    await stranger.dial(multiaddr(addrOf(holder.node)))
    const known = { coordinator: job.node.peerId.toString(), jobId: job.spec.jobId, sha256: scene.sha256 }

    await assert.rejects(askHave(stranger, holder.node.peerId, { ...known, jobId: 'another-job' }), PieceRefusedError)
    await assert.rejects(askHave(stranger, holder.node.peerId, { ...known, sha256: createHash('sha256').update('x').digest() }), /unknown job or file/)
    const have = await askHave(stranger, holder.node.peerId, known)
    assert.ok(have.have.every(byte => byte === 0), 'it holds nothing yet')
    const piece = { index: 0, length: MiB, sha256: scene.pieceHashes?.[0] ?? new Uint8Array() }
    await assert.rejects(fetchSpan(stranger, holder.node.peerId, known, [piece], async () => {}), /not held/)
    await assert.rejects(askPeers(stranger, holder.node.peerId, known), /coordinator/)
  })
})
