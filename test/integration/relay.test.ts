/**
 * Relays, with real libp2p nodes on 127.0.0.1: a coordinator and a
 * worker that listen on no address of their own (as behind NAT: they can
 * dial out, nobody can dial in) render a job through a `blendnet relay`
 * node; and a worker whose bootstrap relay went away and came back on
 * the same address rejoins and takes the next job.
 */
import assert from 'node:assert/strict'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { verifyImage } from '../../src/image/verify.js'
import { newPeerKey } from '../../src/net/identity.js'
import { createSwarmNode, type SwarmNode } from '../../src/net/node.js'
import { createRelayNode, type RelayNode } from '../../src/net/relay-node.js'
import { WorkDir } from '../../src/worker/work-dir.js'
import { Worker } from '../../src/worker/worker.js'
import { cpuWorker } from '../helpers/capabilities.js'
import { RendersSolidPngs } from '../helpers/fake-renderers.js'
import { frameFiles } from '../helpers/frames.js'
import { HEIGHT, startJob, tempDir, waitFor, WIDTH } from '../helpers/swarm.js'

const MiB = 1024 * 1024

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})

async function startRelay (key: PrivateKey, listen = '/ip4/127.0.0.1/tcp/0'): Promise<RelayNode> {
  const relay = await createRelayNode({ privateKey: key, listen: [listen], announce: [] })
  cleanups.push(async () => { await relay.stop() })
  return relay
}

/** A swarm node that listens on nothing of its own: reachable only through a relay. */
async function behindNat (bootstrap: string): Promise<SwarmNode> {
  return await startSwarmNode([], bootstrap)
}

const keys = new WeakMap<SwarmNode, PrivateKey>()

async function startSwarmNode (listen: string[], bootstrap: string): Promise<SwarmNode> {
  const privateKey = await newPeerKey()
  const node = await createSwarmNode({ privateKey, listen, bootstrap: [bootstrap], mdns: false })
  keys.set(node, privateKey)
  cleanups.push(async () => { await node.stop() })
  return node
}

async function startWorkerOn (node: SwarmNode, renderer: RendersSolidPngs): Promise<Worker> {
  const workDir = await WorkDir.open(await tempDir('blendnet-worker-'))
  const key = keys.get(node)
  assert.ok(key !== undefined)
  const worker = new Worker({ node, key, renderer, capabilities: cpuWorker(), workDir })
  await worker.start()
  cleanups.push(async () => {
    await worker.stop()
    await rm(workDir.root, { recursive: true, force: true })
  })
  return worker
}

function circuitAddrs (node: SwarmNode): string[] {
  return node.getMultiaddrs().map(String).filter(a => a.includes('/p2p-circuit/'))
}

describe('relays', { timeout: 120_000 }, () => {
  it('a coordinator and a worker that cannot be dialled render a 6 MiB scene through a relay', async () => {
    const relay = await startRelay(await newPeerKey())
    const relayAddr = relay.getMultiaddrs()[0].toString()
    const coordinatorNode = await behindNat(relayAddr)
    const workerNode = await behindNat(relayAddr)
    // Each reserves a slot and is reachable only at a /p2p-circuit address.
    await waitFor(() => circuitAddrs(coordinatorNode).length > 0 && circuitAddrs(workerNode).length > 0, 'relay reservations')
    assert.deepEqual(coordinatorNode.getMultiaddrs().filter(a => !a.toString().includes('/p2p-circuit/')), [])
    assert.equal(relay.services.relay.reservations.size, 2)

    const frames = [1, 2, 3, 4, 5, 6]
    const job = await startJob(frames, 2, { node: coordinatorNode, sceneBytes: 6 * MiB })
    cleanups.push(async () => { job.coordinator.cancel('test over') })
    const run = job.coordinator.run()
    const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
    await startWorkerOn(workerNode, renderer)

    const outcome = await run
    assert.equal(outcome.succeeded, true)
    assert.deepEqual(renderer.rendered.sort((a, b) => a - b), frames)
    assert.deepEqual(await frameFiles(job.outputDir), frames.map(f => `frame_000${f}.png`))
    for (const file of await frameFiles(job.outputDir)) {
      const check = verifyImage(await readFile(join(job.outputDir, file)), { format: 'PNG', width: WIDTH, height: HEIGHT })
      assert.equal(check.ok, true, file)
    }
    // Every connection between the two went through the relay, unlimited.
    const between = workerNode.getConnections(coordinatorNode.peerId)
    assert.ok(between.length > 0, 'the worker is connected to the coordinator')
    for (const conn of between) {
      assert.match(conn.remoteAddr.toString(), new RegExp(`/p2p/${relay.peerId.toString()}/p2p-circuit`))
      assert.equal(conn.limits, undefined, 'the relay sets no data or time limit')
    }
  })

  it('a worker whose relay restarts on the same address rejoins it and takes the next job', async () => {
    const relayKey = await newPeerKey()
    const first = await startRelay(relayKey)
    const relayAddr = first.getMultiaddrs()[0].toString()
    const workerNode = await startSwarmNode(['/ip4/127.0.0.1/tcp/0'], relayAddr)
    const renderer = new RendersSolidPngs(WIDTH, HEIGHT)
    await startWorkerOn(workerNode, renderer)
    const relayId = peerIdFromPrivateKey(relayKey)
    const connectedToRelay = (): boolean => workerNode.getConnections(relayId).length > 0
    await waitFor(connectedToRelay, 'the worker joining the relay')

    await first.stop()
    await waitFor(() => !connectedToRelay(), 'the worker noticing the relay is gone')
    // Down for a while: the worker's first redials fail.
    await new Promise(resolve => setTimeout(resolve, 3000))
    const second = await startRelay(relayKey, relayAddr.replace(/\/p2p\/.*$/, ''))
    await waitFor(connectedToRelay, 'the worker rejoining the restarted relay', 60_000)
    await waitFor(() => circuitAddrs(workerNode).length > 0, 'a new reservation on the restarted relay')

    // A job that reaches the worker only through the restarted relay.
    const coordinatorNode = await behindNat(second.getMultiaddrs()[0].toString())
    const job = await startJob([1, 2, 3, 4], 2, { node: coordinatorNode })
    cleanups.push(async () => { job.coordinator.cancel('test over') })
    const outcome = await job.coordinator.run()
    assert.equal(outcome.succeeded, true)
    assert.deepEqual(renderer.rendered.sort((a, b) => a - b), [1, 2, 3, 4])
  })
})
