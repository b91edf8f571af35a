/**
 * A job through a relay, between machines that cannot reach each other,
 * made with network namespaces: `blendnet relay` runs in one namespace
 * with a leg into each of two subnets; `blendnet submit` runs in the
 * first subnet and `blendnet worker` in the second. Neither has a route
 * to the other's subnet and the relay's namespace forwards no packets,
 * like two offices behind NAT and a relay on a server both can reach.
 * The scene is several MB, so the relay carries real file traffic.
 *
 * Needs root (or CAP_NET_ADMIN) for `ip netns add`; skipped, saying so,
 * without it. Every namespace is named after this process and removed
 * afterwards; no traffic leaves them.
 */
import assert from 'node:assert/strict'
import { readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { CLI, TEST_ENV } from '../helpers/cli.js'
import { frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

const SIDE = 8
const FRAMES = [1, 2, 3, 4, 5, 6]
const FAKE = packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts')
/** A hidden grid of this many cells a side adds about 6 MB of mesh. */
const PAD_GRID = 200

const NS = {
  relay: `bn-${process.pid}-r`,
  coordinator: `bn-${process.pid}-c`,
  worker: `bn-${process.pid}-w`
}
const RELAY_PORT = 4001
const COORDINATOR_NET = { relay: '10.77.1.1', peer: '10.77.1.2' }
const WORKER_NET = { relay: '10.77.2.1', peer: '10.77.2.2' }

async function ip (...args: string[]): Promise<void> {
  await execa('ip', args)
}

/** The three namespaces and their two links, or why they cannot be made. */
async function makeNetwork (): Promise<string | undefined> {
  try {
    await ip('netns', 'add', NS.relay)
  } catch (err) {
    return `cannot create network namespaces here (${(err as { stderr?: string }).stderr?.trim() ?? String(err)}); run as root with iproute2`
  }
  await ip('netns', 'add', NS.coordinator)
  await ip('netns', 'add', NS.worker)
  for (const [ns, net, dev, relayDev] of [
    [NS.coordinator, COORDINATOR_NET, 'vc', 'vr-c'],
    [NS.worker, WORKER_NET, 'vw', 'vr-w']
  ] as const) {
    await ip('link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', relayDev, 'netns', NS.relay)
    await ip('-n', ns, 'addr', 'add', `${net.peer}/24`, 'dev', dev)
    await ip('-n', NS.relay, 'addr', 'add', `${net.relay}/24`, 'dev', relayDev)
    await ip('-n', ns, 'link', 'set', dev, 'up')
    await ip('-n', NS.relay, 'link', 'set', relayDev, 'up')
  }
  for (const ns of Object.values(NS)) await ip('-n', ns, 'link', 'set', 'lo', 'up')
  return undefined
}

async function removeNetwork (): Promise<void> {
  for (const ns of Object.values(NS)) await execa('ip', ['netns', 'del', ns], { reject: false })
}

type Proc = ReturnType<typeof inNamespace>

/** `blendnet ...` inside a namespace; `ip netns exec` execs it, so the PID is blendnet's. */
function inNamespace (ns: string, args: string[], env: Record<string, string> = {}) {
  return execa('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args], {
    all: true, buffer: false, reject: false, env: { ...TEST_ENV, ...env }
  })
}

function collect (proc: Proc): () => string {
  let seen = ''
  proc.all?.on('data', (data: Buffer) => { seen += data.toString() })
  return () => seen
}

async function waitForLine (output: () => string, pattern: RegExp, proc: Proc, what: string): Promise<RegExpExecArray> {
  const deadline = Date.now() + 60_000
  let exited = false
  void proc.then(() => { exited = true })
  for (;;) {
    const match = pattern.exec(output())
    if (match !== null) return match
    if (exited || Date.now() > deadline) throw new Error(`${what} never printed ${pattern}:\n${output()}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** The demo scene with a big mesh hidden from the render: several MB to carry. */
async function paddedScene (path: string): Promise<void> {
  const blender = await findBlender()
  await makeDemoScene(blender, path, { frames: FRAMES.length, width: SIDE, height: SIDE })
  const pad = 'import bpy; ' +
    `bpy.ops.mesh.primitive_grid_add(x_subdivisions=${PAD_GRID}, y_subdivisions=${PAD_GRID}); ` +
    'bpy.context.active_object.hide_render = True; bpy.ops.wm.save_mainfile()'
  await execa(blender.path, ['-b', '--factory-startup', path, '--python-expr', pad], { timeout: 120_000 })
}

describe('a job through a relay between two networks that cannot reach each other', { timeout: 300_000 }, () => {
  let skip: string | undefined
  let dir: string
  const procs: Proc[] = []
  let relayId: string | undefined
  let workerLog: string
  let countLog: string

  async function submitJob (scene: string, frames: string, output: string) {
    return await execa('ip', ['netns', 'exec', NS.coordinator, process.execPath, CLI, 'submit', scene,
      '--frames', frames, '--chunk-size', '2', '--output', output, '--no-mdns',
      '--listen', '/ip4/0.0.0.0/tcp/0', '--bootstrap', `/ip4/${COORDINATOR_NET.relay}/tcp/${RELAY_PORT}/p2p/${relayId ?? ''}`,
      '--worker-wait', '2m', '--timeout', '4m'], { reject: false, all: true, env: TEST_ENV, timeout: 280_000 })
  }

  async function renderedFrames (): Promise<number[]> {
    return (await readFile(countLog, 'utf8')).trim().split('\n').map(line => Number(line.split(' ')[0]))
  }

  before(async () => {
    skip = await makeNetwork()
    dir = await tempDir('blendnet-relay-netns-')
  })

  after(async () => {
    for (const proc of procs) proc.kill('SIGTERM')
    await Promise.all(procs.map(async p => await p))
    await removeNetwork()
    await rm(dir, { recursive: true, force: true })
  })

  it('the submit and the worker have no route to each other, only to the relay', async (t) => {
    if (skip !== undefined) { t.skip(skip); return }
    const noRoute = await execa('ip', ['netns', 'exec', NS.worker, 'ip', 'route', 'get', COORDINATOR_NET.peer], { reject: false })
    assert.notEqual(noRoute.exitCode, 0)
    assert.match(noRoute.stderr, /unreachable/i)
    const back = await execa('ip', ['netns', 'exec', NS.coordinator, 'ip', 'route', 'get', WORKER_NET.peer], { reject: false })
    assert.notEqual(back.exitCode, 0)
    const toRelay = await execa('ip', ['netns', 'exec', NS.worker, 'ip', 'route', 'get', WORKER_NET.relay])
    assert.match(toRelay.stdout, /dev vw/)
    const forwarding = await execa('ip', ['netns', 'exec', NS.relay, 'cat', '/proc/sys/net/ipv4/ip_forward'])
    assert.equal(forwarding.stdout.trim(), '0', 'the relay namespace routes no packets between the two')
  })

  it('renders every frame of a several-MB scene, the worker reaching the submit through the relay', async (t) => {
    if (skip !== undefined) { t.skip(skip); return }
    const scene = join(dir, 'scene.blend')
    await paddedScene(scene)
    const sceneBytes = (await stat(scene)).size
    assert.ok(sceneBytes > 5_000_000, `the scene is ${sceneBytes} bytes`)

    const relay = inNamespace(NS.relay, ['relay', '--listen', `/ip4/0.0.0.0/tcp/${RELAY_PORT}`,
      '--key', join(dir, 'relay.key'), '--log-file', join(dir, 'relay.log')])
    procs.push(relay)
    const relayOut = collect(relay)
    relayId = (await waitForLine(relayOut, /^blendnet relay (\w+)$/m, relay, 'the relay'))[1]
    // The addresses come on later lines, maybe in a later write.
    await waitForLine(relayOut, new RegExp(`^    /ip4/${WORKER_NET.relay.replaceAll('.', '\\.')}/tcp/${RELAY_PORT}/p2p/${relayId}$`, 'm'),
      relay, 'the relay\'s address on the workers\' network')

    workerLog = join(dir, 'worker.log')
    countLog = join(dir, 'rendered.log')
    const worker = inNamespace(NS.worker, ['worker', '--listen', '/ip4/0.0.0.0/tcp/0', '--no-mdns',
      '--bootstrap', `/ip4/${WORKER_NET.relay}/tcp/${RELAY_PORT}/p2p/${relayId}`,
      '--work-dir', join(dir, 'worker'), '--blender', FAKE, '--sandbox', 'none', '--log-file', workerLog], {
      FAKE_BLENDER_COUNT_LOG: countLog, FAKE_BLENDER_FRAME_SIZE: String(SIDE)
    })
    procs.push(worker)
    const workerOut = collect(worker)
    await waitForLine(workerOut, /^blendnet worker (\w+)$/m, worker, 'the worker')

    const output = join(dir, 'renders')
    const submit = await submitJob(scene, '1-6', output)
    const coordinatorId = /^coordinator (\w+) listening/m.exec(String(submit.stdout))?.[1]
    assert.equal(submit.exitCode, 0, `${submit.all}\n--- worker:\n${workerOut()}\n${await readFile(workerLog, 'utf8')}`)
    assert.ok(coordinatorId !== undefined, String(submit.stdout))
    assert.deepEqual(await frameFiles(output), FRAMES.map(f => `frame_000${f}.png`))
    assert.deepEqual((await renderedFrames()).sort((a, b) => a - b), FRAMES, 'each frame rendered once')

    // The worker's log: its only way to the submit was a circuit through the relay.
    const log = await readFile(workerLog, 'utf8')
    // (The circuit address names the relay as the submit sees it; the
    // worker reaches the relay, by its peer ID, on its own link.)
    assert.match(log, new RegExp(`relayed connection peer=${coordinatorId} relay=/ip4/[\\d.]+/tcp/${RELAY_PORT}/p2p/${relayId}/p2p-circuit/p2p/${coordinatorId} direction=outbound`))
    assert.match(log, new RegExp(`file fetched job=\\w+ hash=\\w+ fromCoordinator=${sceneBytes}|job files ready job=\\w+ files=1 fetched=${sceneBytes}`))
    assert.match(log, /reachable through relay relay=\S+\/p2p-circuit/)
    assert.equal(workerOut().includes(' info  '), false, 'with --log-file, no log line goes to stderr')
    assert.match(await readFile(join(dir, 'relay.log'), 'utf8'), new RegExp(`peer connected peer=${coordinatorId}`))
  })

  it('a worker that lost its network for a while rejoins through the relay and renders the next job', async (t) => {
    if (skip !== undefined) { t.skip(skip); return }
    if (relayId === undefined) { t.skip('needs the relay and worker of the test before'); return }
    const log = async (): Promise<string> => await readFile(workerLog, 'utf8')
    const waitForLog = async (pattern: RegExp, what: string): Promise<void> => {
      const deadline = Date.now() + 90_000
      while (!pattern.test(await log())) {
        if (Date.now() > deadline) throw new Error(`the worker never logged ${what}:\n${await log()}`)
        await new Promise(resolve => setTimeout(resolve, 200))
      }
    }
    // The worker's only link goes down: its connection to the relay dies
    // without a word, and each redial finds no route.
    await ip('-n', NS.worker, 'link', 'set', 'vw', 'down')
    await waitForLog(/lost bootstrap peer bootstrap=\S+/, 'that it lost the relay')
    await waitForLog(/bootstrap peer unreachable bootstrap=\S+ attempt=2 /, 'two failed redials')
    await ip('-n', NS.worker, 'link', 'set', 'vw', 'up')
    await waitForLog(new RegExp(`reconnected to bootstrap peer bootstrap=/ip4/${WORKER_NET.relay.replaceAll('.', '\\.')}/tcp/${RELAY_PORT}/p2p/${relayId} attempt=\\d+`), 'that it reconnected')

    const before = (await renderedFrames()).length
    const output = join(dir, 'after-outage')
    const submit = await submitJob(join(dir, 'scene.blend'), '1-4', output)
    assert.equal(submit.exitCode, 0, `${submit.all}\n--- worker:\n${await log()}`)
    assert.deepEqual(await frameFiles(output), ['frame_0001.png', 'frame_0002.png', 'frame_0003.png', 'frame_0004.png'])
    assert.deepEqual((await renderedFrames()).slice(before).sort((a, b) => a - b), [1, 2, 3, 4], 'the same worker rendered them')
  })
})
