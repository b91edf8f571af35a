/**
 * A coordinator facing peers that break the protocol: each bad message is
 * refused and counted, nothing reaches the output folder, nothing crashes.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CHUNK_LOG_PROTOCOL, CLAIM_PROTOCOL, JOBS_TOPIC, MAX_CHUNK_LOG_BYTES, MAX_FRAME_BYTES, RESULT_PROTOCOL } from '../../src/common/constants.js'
import { frameFiles } from '../helpers/frames.js'
import { cpuWorker } from '../helpers/capabilities.js'
import { newPeerKey } from '../../src/net/identity.js'
import type { SwarmNode } from '../../src/net/node.js'
import { signClaim } from '../../src/net/signing.js'
import { framed, readMessage, writeMessage } from '../../src/net/streams.js'
import {
  ChunkLogCodec, ClaimReplyCodec, ClaimRequestCodec, FrameResultCodec, ResultReplyCodec,
  decodeSwarmMessage, encodeSwarmMessage,
  type Claim, type ClaimReply, type ResultReply
} from '../../src/net/wire.js'
import { createSwarmNode } from '../../src/net/node.js'
import { CoordinatorClient } from '../../src/worker/coordinator-client.js'
import { chunkLogDir } from '../../src/coordinator/log-handler.js'
import { maxFrameBytes } from '../../src/coordinator/result-handler.js'
import { pngBytes, RendersSolidPngs } from '../helpers/fake-renderers.js'
import { addrOf, HEIGHT, startJob, startWorker, tempDir, type TestJob, waitFor, WIDTH } from '../helpers/swarm.js'

async function rawClaim (node: SwarmNode, job: TestJob, claim: Claim): Promise<ClaimReply> {
  const stream = await node.dialProtocol(multiaddr(addrOf(job.node)), CLAIM_PROTOCOL)
  const lp = framed(stream)
  await writeMessage(lp, ClaimRequestCodec, { claim })
  return readMessage(lp, ClaimReplyCodec)
}

/** Pushes `bytes` as frame `frame`, announcing `sha256` and `size`. */
async function rawResult (node: SwarmNode, job: TestJob, frame: number,
  bytes: Uint8Array, sha256 = createHash('sha256').update(bytes).digest()): Promise<ResultReply> {
  const stream = await node.dialProtocol(multiaddr(addrOf(job.node)), RESULT_PROTOCOL)
  const lp = framed(stream)
  await writeMessage(lp, FrameResultCodec, { jobId: job.spec.jobId, chunkId: 0, frame, size: bytes.byteLength, sha256 })
  try { stream.send(bytes) } catch {}
  return readMessage(lp, ResultReplyCodec)
}

describe('a coordinator under hostile messages', { timeout: 60_000 }, () => {
  let job: TestJob
  let mallory: SwarmNode
  let malloryKey: Awaited<ReturnType<typeof newPeerKey>>

  before(async () => {
    job = await startJob([1, 2], 2, { workerWaitMs: 600_000 })
    void job.coordinator.run()
    malloryKey = await newPeerKey()
    mallory = await createSwarmNode({ privateKey: malloryKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [addrOf(job.node)], mdns: false })
    await mallory.dial(multiaddr(addrOf(job.node)))
  })

  after(async () => {
    job.coordinator.cancel('test over')
    await mallory.stop()
    await job.node.stop()
  })

  it('refuses a claim signed by another key', async () => {
    const claim = await signClaim(await newPeerKey(), { jobId: job.spec.jobId, chunkId: 0, capabilities: cpuWorker() })
    const reply = await rawClaim(mallory, job, claim)
    assert.equal(reply.ok, false)
    assert.match(reply.reason, /signature/)
  })

  it('refuses a claim for an unknown job', async () => {
    const claim = await signClaim(malloryKey, { jobId: 'not-this-job', chunkId: 0, capabilities: cpuWorker() })
    assert.equal((await rawClaim(mallory, job, claim)).ok, false)
  })

  it('refuses a claim from a worker whose Blender cannot render the job', async () => {
    const claim = await signClaim(malloryKey, { jobId: job.spec.jobId, chunkId: 0, capabilities: cpuWorker('2.93.0') })
    const reply = await rawClaim(mallory, job, claim)
    assert.equal(reply.ok, false)
    assert.match(reply.reason, /needs Blender 3\.4, has 2\.93\.0/)
  })

  it('refuses a frame from a peer that holds no lease, writing nothing', async () => {
    const reply = await rawResult(mallory, job, 1, pngBytes(WIDTH, HEIGHT, 1))
    assert.equal(reply.accepted, false)
    assert.match(reply.reason, /does not hold chunk 0/)
  })

  it('refuses a chunk log from a peer that holds no lease, writing nothing', async () => {
    const dir = await tempDir()
    const path = join(dir, 'blender.log')
    await writeFile(path, 'not mine to send\n')
    const client = new CoordinatorClient(mallory, malloryKey, peerIdFromString(job.node.peerId.toString()), job.spec.jobId)
    const reply = await client.pushLog(0, path, false)
    assert.equal(reply.accepted, false)
    assert.match(reply.reason, /not leased to this worker/)
    await assert.rejects(readdir(chunkLogDir(job.outputDir, job.spec.jobId)), /ENOENT/)
  })

  it('refuses a replayed claim', async () => {
    const claim = await signClaim(malloryKey, { jobId: job.spec.jobId, chunkId: 0, capabilities: cpuWorker() })
    assert.equal((await rawClaim(mallory, job, claim)).ok, true)
    const again = await rawClaim(mallory, job, claim)
    assert.equal(again.ok, false)
    assert.match(again.reason, /already used/)
  })

  it('refuses, as the lease holder, a frame whose bytes do not match their hash', async () => {
    const bytes = pngBytes(WIDTH, HEIGHT, 1)
    const reply = await rawResult(mallory, job, 1, bytes, createHash('sha256').update('other').digest())
    assert.equal(reply.accepted, false)
    assert.match(reply.reason, /SHA-256/)
  })

  it('refuses a frame that is not an image, or not of the job\'s size', async () => {
    const text = await rawResult(mallory, job, 1, new TextEncoder().encode('#!/bin/sh\nrm -rf /\n'))
    assert.equal(text.accepted, false)
    const small = await rawResult(mallory, job, 1, pngBytes(WIDTH / 2, HEIGHT, 1))
    assert.equal(small.accepted, false)
    assert.match(small.reason, /expected 16x9/)
  })

  it('keeps the lease holder\'s chunk log in .blendnet/logs, and refuses one over the size limit', async () => {
    const dir = await tempDir()
    const path = join(dir, 'blender.log')
    await writeFile(path, 'Fra:1 Mem:8.49M | Sample 1/4\nError: out of memory\n')
    const client = new CoordinatorClient(mallory, malloryKey, peerIdFromString(job.node.peerId.toString()), job.spec.jobId)
    assert.equal((await client.pushLog(0, path, true)).accepted, true)
    const logs = await readdir(chunkLogDir(job.outputDir, job.spec.jobId))
    assert.equal(logs.length, 1)
    assert.match(logs[0], new RegExp(`^chunk-0000_frames-1-2_failed_${mallory.peerId.toString()}_.*\\.log$`))
    assert.match(await readFile(join(chunkLogDir(job.outputDir, job.spec.jobId), logs[0]), 'utf8'), /Error: out of memory/)
    const again = await client.pushLog(0, path, true)
    assert.equal(again.accepted, false)
    assert.match(again.reason, /already kept/, 'one log per worker and chunk')

    const stream = await mallory.dialProtocol(multiaddr(addrOf(job.node)), CHUNK_LOG_PROTOCOL)
    const lp = framed(stream)
    await writeMessage(lp, ChunkLogCodec, { jobId: job.spec.jobId, chunkId: 0, size: MAX_CHUNK_LOG_BYTES + 1, sha256: new Uint8Array(32), failed: false })
    const reply = await readMessage(lp, ResultReplyCodec)
    assert.equal(reply.accepted, false)
    assert.match(reply.reason, /over 4194304/)
  })

  it('refuses a frame that is not in the chunk', async () => {
    const reply = await rawResult(mallory, job, 99, pngBytes(WIDTH, HEIGHT, 1))
    assert.equal(reply.accepted, false)
    assert.match(reply.reason, /not in chunk/)
  })

  it('accepts a good frame from the lease holder and nothing else reached the output', async () => {
    const dir = await tempDir()
    const path = join(dir, 'frame.png')
    await writeFile(path, pngBytes(WIDTH, HEIGHT, 1))
    const client = new CoordinatorClient(mallory, malloryKey, peerIdFromString(job.node.peerId.toString()), job.spec.jobId)
    assert.equal((await client.pushFrame(0, 1, path)).accepted, true)
    assert.deepEqual(await frameFiles(job.outputDir), ['frame_0001.png'])
  })

  it('counts a claim stream with a broken request, not one closed before its first byte', async () => {
    const malformed = (): number => job.events.filter(e => e.type === 'message-rejected' &&
      (e as { reason: string }).reason.startsWith('malformed-claim')).length
    const before = malformed()
    const silent = await mallory.dialProtocol(multiaddr(addrOf(job.node)), CLAIM_PROTOCOL)
    await silent.close()
    const garbled = await mallory.dialProtocol(multiaddr(addrOf(job.node)), CLAIM_PROTOCOL)
    garbled.send(Uint8Array.of(0x05, 0xff))
    await garbled.close()
    await waitFor(() => malformed() > before, 'the garbled claim to be counted')
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(malformed(), before + 1, 'the silent stream was not counted against the peer')
  })

  it('counted every refusal by kind', () => {
    const kinds = job.events.filter(e => e.type === 'message-rejected').map(e => (e as { reason: string }).reason.split(':')[0])
    for (const kind of ['bad-signature', 'unknown-job', 'unfit-worker', 'refused-result', 'replayed-claim', 'bad-frame', 'refused-chunk-log']) {
      assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(', ')}`)
    }
  })
})

describe('a coordinator under a flood of requests', { timeout: 60_000 }, () => {
  it('cuts off a peer that opens streams too fast, while an honest worker finishes the job', async () => {
    const job = await startJob([1, 2, 3, 4], 1, {
      workerWaitMs: 600_000, rateLimit: { perSecond: 5, burst: 30, cutOffAfter: 30, blockMs: 60_000 }
    })
    const run = job.coordinator.run()
    const flooder = await createSwarmNode({ privateKey: await newPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false })
    await waitFor(() => job.node.getProtocols().includes(RESULT_PROTOCOL), 'the coordinator to take claims')
    try {
      let refused = 0
      for (let i = 0; i < 300; i++) {
        const stream = await flooder.dialProtocol(multiaddr(addrOf(job.node)), CLAIM_PROTOCOL).catch(() => undefined)
        if (stream === undefined) { refused++; continue }
        // A claim for nothing: the coordinator refuses it, or the limit does.
        const lp = framed(stream)
        await writeMessage(lp, ClaimRequestCodec, { renewal: { jobId: job.spec.jobId, chunkId: 0 } }).catch(() => {})
        await readMessage(lp, ClaimReplyCodec).catch(() => { refused++ })
        // Closed each time, so libp2p's own cap on open streams is not what stops it.
        await stream.close().catch(() => {})
      }
      assert.ok(refused > 200, `most of the flood was refused (${refused} of 300)`)
      assert.ok(job.events.some(e => e.type === 'message-rejected' && e.peer === flooder.peerId.toString() &&
        e.reason.startsWith('flooding')), 'the flooder was cut off and counted')

      const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
      await startWorker(renderer, [addrOf(job.node)]).then(async (w) => {
        const outcome = await run
        await w.worker.stop()
        await w.node.stop()
        assert.equal(outcome.succeeded, true)
        assert.equal(outcome.rejected.flooding, 1)
      })
    } finally {
      job.coordinator.cancel('test over')
      await flooder.stop()
      await job.node.stop()
    }
  })

  it('refuses a frame header far larger than an image of the job\'s size, before reading it', () => {
    assert.equal(maxFrameBytes({ scene: 'S', format: 'PNG', width: 16, height: 9, engine: '', samples: 0, resolutionPercentage: 0, device: '' }),
      2 ** 20 + 16 * 9 * 16)
    assert.equal(maxFrameBytes({ scene: 'S', format: 'PNG', width: 0, height: 0, engine: '', samples: 0, resolutionPercentage: 0, device: '' }),
      MAX_FRAME_BYTES)
  })
})

describe('a worker among hostile coordinators', { timeout: 90_000 }, () => {
  it('a coordinator that never answers claims does not hold up a real job', async () => {
    // The staller announces a job with many chunks and swallows claims.
    const staller = await createSwarmNode({ privateKey: await newPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false })
    let swallowed = 0
    await staller.handle(CLAIM_PROTOCOL, () => { swallowed++ })
    staller.services.pubsub.subscribe(JOBS_TOPIC)
    const announce = (): void => {
      void staller.services.pubsub.publish(JOBS_TOPIC, encodeSwarmMessage({
        job: {
          jobId: 'stalled', blend: { sha256: new Uint8Array(32), size: 1, name: 'x' },
          settings: { scene: 'Scene', format: 'PNG', width: WIDTH, height: HEIGHT, engine: '', samples: 0, resolutionPercentage: 0, device: '' },
          requirements: { minBlender: '2.8', engine: 'CYCLES', device: 'CPU', denoiser: '' },
          openChunks: Array.from({ length: 32 }, (_, id) => ({ id, frames: [id] })),
          openCount: 32, coordinatorAddrs: staller.getMultiaddrs().map(a => a.bytes), leaseMs: 30_000,
          manifest: { sha256: new Uint8Array(32), size: 1, name: 'm' }
        }
      })).catch(() => {})
    }
    const timer = setInterval(announce, 500)
    const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
    const w = await startWorker(renderer, [addrOf(staller)])
    const job = await startJob([1, 2, 3, 4], 1)
    try {
      await waitFor(() => swallowed > 0, 'the worker to claim at the staller')
      // Only now does the real job reach the worker.
      const run = job.coordinator.run()
      await job.node.dial(multiaddr(addrOf(w.node)))
      const started = Date.now()
      const outcome = await run
      assert.equal(outcome.succeeded, true)
      assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`)
      assert.ok(swallowed < 4, `${swallowed} claims were lost to the staller`)
    } finally {
      clearInterval(timer)
      await Promise.all([w.worker.stop(), w.node.stop(), staller.stop(), job.node.stop()])
    }
  })

  it('refuses a job id that could name a path', () => {
    const bytes = encodeSwarmMessage({ finished: { jobId: '../../victim', succeeded: true } })
    assert.throws(() => decodeSwarmMessage(bytes), /characters other than/)
  })
})
