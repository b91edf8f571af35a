/**
 * A private swarm as a user makes one: `blendnet keygen`, then a worker
 * and a submit given the key render a job, a submit without it cannot
 * reach the worker, and `blendnet id` names a stable peer. Every process
 * gets its own config dir, so nothing here reads or writes ~/.config.
 */
import assert from 'node:assert/strict'
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { CLI, startCliWorker, stopWorkers, type RunningWorker } from '../helpers/cli.js'
import { frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

const SIDE = 8
const FAKE = packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts')

describe('private swarm from the command line', { timeout: 300_000 }, () => {
  let dir: string
  let scene: string
  let config: string
  let swarmKey: string
  let fingerprint: string
  let worker: RunningWorker | undefined

  /** `blendnet ...` to its end, under the config dir given. */
  async function run (args: string[], configDir = config, timeoutMs = 120_000) {
    const result = await execa(process.execPath, [CLI, ...args], {
      reject: false, timeout: timeoutMs, env: { BLENDNET_LOG: 'info', BLENDNET_CONFIG_DIR: configDir }
    })
    return { code: result.exitCode, out: String(result.stdout), err: String(result.stderr) }
  }

  before(async () => {
    dir = await tempDir('blendnet-private-')
    scene = join(dir, 'scene.blend')
    config = join(dir, 'config')
    swarmKey = join(dir, 'swarm.key')
    await makeDemoScene(await findBlender(), scene, { frames: 4, width: SIDE, height: SIDE })
  })

  after(async () => {
    if (worker !== undefined) await stopWorkers([worker])
    await rm(dir, { recursive: true, force: true })
  })

  it('blendnet id prints the same peer ID every time, from a key of mode 0600 it made once', async () => {
    const first = await run(['id'])
    assert.equal(first.code, 0, first.err)
    const keyPath = join(config, 'identity.key')
    assert.match(first.out, new RegExp(`^12D3KooW\\w+\\nkey ${keyPath} \\(created now, mode 0600\\)$`))
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600)
    const second = await run(['id'])
    assert.equal(second.out, `${first.out.split('\n')[0]}\nkey ${keyPath}`)
    const other = await run(['id', '--key', join(dir, 'other.key')])
    assert.notEqual(other.out.split('\n')[0], first.out.split('\n')[0])
  })

  it('blendnet keygen writes a swarm key of mode 0600 and never overwrites one', async () => {
    const made = await run(['keygen', swarmKey])
    assert.equal(made.code, 0, made.err)
    fingerprint = /^wrote a new swarm key to \S+swarm\.key \(fingerprint ([0-9a-f:]{19})\)$/m.exec(made.out)?.[1] ?? ''
    assert.notEqual(fingerprint, '', made.out)
    assert.equal((await stat(swarmKey)).mode & 0o777, 0o600)
    const text = await readFile(swarmKey, 'utf8')
    assert.match(text, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    assert.ok(!made.out.includes(text.split('\n')[2]), 'the key itself is never printed')

    const again = await run(['keygen', swarmKey])
    assert.equal(again.code, 2)
    assert.match(again.err, /^blendnet: \S+swarm\.key already exists; keygen never replaces a key/)
    assert.equal(await readFile(swarmKey, 'utf8'), text)
  })

  it('a worker and a submit with --swarm-key render a job; a submit without the key never reaches the worker', async () => {
    const countLog = join(dir, 'rendered.log')
    // The fake counts renders in a file of the test's: no sandbox.
    worker = await startCliWorker(join(dir, 'worker'), [], ['--blender', FAKE, '--sandbox', 'none', '--swarm-key', swarmKey], {
      BLENDNET_CONFIG_DIR: config, FAKE_BLENDER_COUNT_LOG: countLog, FAKE_BLENDER_FRAME_SIZE: String(SIDE), FAKE_BLENDER_FRAME_SECONDS: '0.1'
    })
    assert.match(worker.output(), new RegExp(`^swarm: private \\(key ${swarmKey}, fingerprint ${fingerprint}\\)$`, 'm'))

    const keyed = await run(['submit', scene, '--frames', '1-4', '--chunk-size', '2',
      '--output', join(dir, 'keyed'), '--bootstrap', worker.addr, '--swarm-key', swarmKey])
    assert.equal(keyed.code, 0, `${keyed.out}\n${keyed.err}`)
    assert.ok(keyed.out.includes(`swarm: private (key ${swarmKey}, fingerprint ${fingerprint})\n`), keyed.out)
    assert.deepEqual(await frameFiles(join(dir, 'keyed')), ['frame_0001.png', 'frame_0002.png', 'frame_0003.png', 'frame_0004.png'])

    // swarm.key in the config dir is the same as the flag.
    const withConfigKey = join(dir, 'config-with-key')
    await mkdir(withConfigKey)
    await copyFile(swarmKey, join(withConfigKey, 'swarm.key'))
    const fromConfig = await run(['submit', scene, '--frames', '1-2', '--output', join(dir, 'from-config'),
      '--bootstrap', worker.addr], withConfigKey)
    assert.equal(fromConfig.code, 0, `${fromConfig.out}\n${fromConfig.err}`)
    assert.deepEqual(await frameFiles(join(dir, 'from-config')), ['frame_0001.png', 'frame_0002.png'])

    const rendered = await readFile(countLog, 'utf8')
    const started = Date.now()
    const outsider = await run(['submit', scene, '--frames', '1-4', '--output', join(dir, 'outsider'),
      '--bootstrap', worker.addr, '--worker-wait', '5s'])
    assert.equal(outsider.code, 1, `${outsider.out}\n${outsider.err}`)
    assert.match(outsider.out, /^swarm: open \(no swarm key/m)
    assert.match(outsider.out, /no worker joined the swarm in time/)
    assert.ok(Date.now() - started < 60_000, 'the outsider gave up within its --worker-wait')
    assert.deepEqual(await frameFiles(join(dir, 'outsider')), [])
    assert.equal(await readFile(countLog, 'utf8'), rendered, 'the worker rendered nothing for the outsider')
  })

  it('a bad swarm key stops worker and submit with one sentence and exit 2, before any network work', async () => {
    const shared = join(dir, 'shared.key')
    await copyFile(swarmKey, shared)
    await chmod(shared, 0o644)
    const garbage = join(dir, 'garbage.key')
    await writeFile(garbage, 'not a key\n', { mode: 0o600 })
    const cases: Array<[string[], RegExp]> = [
      [['submit', scene, '--output', join(dir, 'x'), '--swarm-key', join(dir, 'missing.key')], /--swarm-key \S+ does not exist; make one with blendnet keygen/],
      [['submit', scene, '--output', join(dir, 'x'), '--swarm-key', garbage], /garbage\.key is not a libp2p swarm key: its first line is not/],
      [['worker', '--blender', FAKE, '--swarm-key', shared], /is open to other users \(mode 0644\); make it private with chmod 600 /]
    ]
    for (const [args, message] of cases) {
      const result = await run(args)
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.out}\n${result.err}`)
      assert.match(result.err, message)
      assert.equal(result.err.trim().split('\n').length, 1, result.err)
      assert.doesNotMatch(result.out, /listening|others can join/)
    }
  })
})
