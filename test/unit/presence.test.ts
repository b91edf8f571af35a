/**
 * WorkerPresence's job id, which `blendnet status` shows: it survives
 * encoding, is checked like every id, is empty from peers that predate
 * it, and peers that predate it still read presence that carries it.
 * Then what `status` keeps of it: the newest presence of each worker,
 * none of one that said it stops.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import protobuf from 'protobufjs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Message } from '@libp2p/gossipsub'
import { JOBS_TOPIC, PROTOCOL_VERSION } from '../../src/common/constants.js'
import { WireError } from '../../src/common/errors.js'
import { packagePath } from '../../src/common/paths.js'
import { decodeSwarmMessage, encodeSwarmMessage, type WorkerPresence } from '../../src/net/wire.js'
import { describeCapabilities, SwarmView } from '../../src/cli/swarm-view.js'
import { cpuWorker } from '../helpers/capabilities.js'

function presenceOf (bytes: Uint8Array): WorkerPresence {
  const decoded = decodeSwarmMessage(bytes)
  assert.ok(decoded !== undefined && 'worker' in decoded)
  return decoded.worker
}

describe('worker presence on the wire', () => {
  it('carries the job being rendered, and none when idle', () => {
    const busy = presenceOf(encodeSwarmMessage({ worker: { capabilities: cpuWorker(), idle: false, jobId: '5c1e9a0d2b7f4e61' } }))
    assert.equal(busy.jobId, '5c1e9a0d2b7f4e61')
    assert.equal(busy.idle, false)
    const idle = presenceOf(encodeSwarmMessage({ worker: { capabilities: cpuWorker(), idle: true } }))
    assert.equal(idle.jobId, '')
  })

  it('refuses a job id that could name a path', () => {
    const bytes = encodeSwarmMessage({ worker: { capabilities: cpuWorker(), idle: false, jobId: '../../etc' } })
    assert.throws(() => decodeSwarmMessage(bytes), WireError)
  })

  it('is read by a peer whose schema has no job id, so the version stays', () => {
    const schema = readFileSync(packagePath('proto', 'blendnet.proto'), 'utf8')
    const older = schema.replace(/^\s*string job_id = 3;$/m, '')
    assert.notEqual(older, schema, 'the field is in the schema')
    const type = protobuf.parse(older).root.lookupType('blendnet.v1.SwarmMessage')
    const bytes = encodeSwarmMessage({ worker: { capabilities: cpuWorker(), idle: false, jobId: 'abc' } })
    const read = type.toObject(type.decode(bytes), { defaults: true }) as { version: number, worker: { idle: boolean } }
    assert.equal(read.version, PROTOCOL_VERSION)
    assert.equal(read.worker.idle, false)
  })
})

const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

describe('what status keeps of the swarm', () => {
  function gossip (seqno: bigint, presence: WorkerPresence): Message {
    return {
      type: 'signed', topic: JOBS_TOPIC, from: peer, sequenceNumber: seqno,
      data: encodeSwarmMessage({ worker: presence }), signature: new Uint8Array(64), key: peer.publicKey
    } as unknown as Message
  }

  it('keeps the newest presence of each worker, whatever order copies arrive in', () => {
    const view = new SwarmView()
    view.onGossip(gossip(11n, { capabilities: cpuWorker(), idle: false, jobId: 'job1' }))
    view.onGossip(gossip(10n, { capabilities: cpuWorker(), idle: true, jobId: '' }))
    const [seen] = view.sortedWorkers()
    assert.equal(view.stateOf(seen), 'busy: job job1')
    view.onGossip(gossip(12n, { capabilities: cpuWorker(), idle: true, jobId: '' }))
    assert.equal(view.stateOf(view.sortedWorkers()[0]), 'idle')
    assert.equal(view.workers.size, 1)
  })

  it('drops a worker that says it stops, and a late copy of its older presence does not bring it back', () => {
    const view = new SwarmView()
    view.onGossip(gossip(20n, { capabilities: cpuWorker(), idle: true }))
    view.onGossip(gossip(22n, { capabilities: cpuWorker(), idle: true, leaving: true }))
    assert.equal(view.workers.size, 0)
    view.onGossip(gossip(21n, { capabilities: cpuWorker(), idle: false, jobId: 'job1' }))
    assert.equal(view.workers.size, 0)
    // Started again, under the same key: its newer presence counts.
    view.onGossip(gossip(23n, { capabilities: cpuWorker(), idle: true }))
    assert.equal(view.workers.size, 1)
  })

  it('names what a worker can render, on one line a terminal cannot be tricked by', () => {
    const caps = { ...cpuWorker('3.4.1'), gpuDevices: [{ type: 'OPTIX', name: 'RTX\u001b[2J' }], denoisers: ['OPTIX'] }
    assert.equal(describeCapabilities(caps), 'Cycles, EEVEE, Workbench; GPU OPTIX; denoise OPTIX; 2 CPUs, 8.0 GiB')
    const hostile = { ...cpuWorker(), engines: ['CYCLES\u001b]0;owned\u0007'] }
    assert.doesNotMatch(describeCapabilities(hostile), /[\u0000-\u001f]/)
  })
})
