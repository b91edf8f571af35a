/**
 * Blender's sandbox, end to end: a .blend whose registered script tries to
 * read a file in the worker's home, write outside its chunk dir and
 * connect to a listener on 127.0.0.1. Sandboxed, every attempt fails and
 * the frames still render; without --allow-scripts the script never runs;
 * and with --sandbox none the same attempts succeed, so the test can fail.
 * Then the limits (memory, file size, CPU time) and how a worker chooses
 * its sandbox where bwrap is missing or cannot run.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { defaultLimits, findSandbox, sandboxedCommand, signalOfExit } from '../../src/blender/sandbox.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { plainRender } from '../fixtures/blender-scenes.js'
import { CLI, runCli, startCliWorker, stopWorkers } from '../helpers/cli.js'
import { assertFramesMatchPlain, frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

const MIB = 1024 ** 2
const ADD_ESCAPE = packagePath('test', 'fixtures', 'scenes', 'add_escape_script.py')
const ATTEMPTS = ['read-home', 'write-home', 'write-outside', 'write-job', 'connect']
/**
 * What must fail outright. A write may instead land in the sandbox's own
 * /tmp, where the test's folders are when TMPDIR is /tmp: what counts is
 * that nothing reaches the host's files.
 */
const REFUSED = ['read-home', 'write-job', 'connect']

describe('Blender in its sandbox', { timeout: 600_000 }, async () => {
  let blender: BlenderInstall
  let dir: string
  let home: string
  let secret: string
  let outside: string
  let reference: string
  let listener: Server
  let connections = 0
  const scene = (): string => join(dir, 'escape.blend')

  // Where bwrap cannot run the sandbox cannot be tested: say so.
  const unavailable = await findSandbox(await findBlender())
  const skip = typeof unavailable === 'string' ? `no sandbox here: ${unavailable}` : false

  before(async () => {
    if (skip !== false) return
    blender = await findBlender()
    dir = await tempDir('blendnet-sandbox-')
    home = join(dir, 'home')
    secret = `secret-${randomBytes(8).toString('hex')}`
    await mkdir(home)
    await writeFile(join(home, 'secret.txt'), secret + '\n')
    await mkdir(join(dir, 'outside'))
    outside = join(dir, 'outside', 'escaped.txt')

    listener = createServer(socket => { connections++; socket.destroy() })
    await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve))
    const port = (listener.address() as { port: number }).port

    await makeDemoScene(blender, scene(), { frames: 2, width: 32, height: 18, samples: 2 })
    reference = join(dir, 'reference')
    await mkdir(reference)
    await plainRender(blender, scene(), reference, ['-f', '1,2'])
    await execa(blender.path, ['-b', '--factory-startup', scene(), '--python-exit-code', '1',
      '-P', ADD_ESCAPE, '--', home, outside, String(port)])
  })

  after(async () => {
    if (skip !== false) return
    listener.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function assertNoMarkers (): Promise<void> {
    assert.equal(await exists(outside), false, 'the marker outside was written')
    assert.equal(await exists(join(home, '.cache', 'escaped.txt')), false, 'the marker in $HOME was written')
  }

  /** One worker (HOME and work dir in the test's home) renders frames 1-2. */
  async function render (label: string, workerFlags: string[], submitFlags: string[]) {
    const worker = await startCliWorker(join(home, '.cache', label), [], workerFlags, { HOME: home })
    try {
      const output = join(dir, label)
      const result = await runCli(['submit', scene(), '--frames', '1-2', '--chunk-size', '2',
        '--output', output, '--bootstrap', worker.addr, ...submitFlags], 300_000)
      assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}\n${worker.output()}`)
      assert.deepEqual(await frameFiles(output), ['frame_0001.png', 'frame_0002.png'])
      await assertFramesMatchPlain(output, reference, [1, 2])
      return { log: await chunkLogs(output), worker: worker.output() }
    } finally {
      await stopWorkers([worker])
    }
  }

  it('with scripts allowed, each escape fails and the frames still render', { skip }, async () => {
    const { log, worker } = await render('sandboxed', ['--allow-scripts'], ['--allow-scripts'])
    assert.match(worker, /runs job scripts \(--allow-scripts\); sandbox: bubblewrap/)
    const said = escapeLines(log)
    for (const attempt of ATTEMPTS) assert.match(said, new RegExp(`^blendnet-escape: ${attempt} `, 'm'), said)
    for (const attempt of REFUSED) {
      assert.match(said, new RegExp(`^blendnet-escape: ${attempt} failed \\w+$`, 'm'), said)
    }
    assert.ok(!log.includes(secret), 'the secret reached the log')
    await assertNoMarkers()
    assert.equal(connections, 0, 'the listener on 127.0.0.1 was reached')
  })

  it('without --allow-scripts the script does not run at all', { skip }, async () => {
    const { log } = await render('no-scripts', ['--allow-scripts'], [])
    assert.doesNotMatch(log, /blendnet-escape/)
    await assertNoMarkers()
    assert.equal(connections, 0)
  })

  it('with --sandbox none the same script escapes (the control)', { skip }, async () => {
    const { log, worker } = await render('unsandboxed', ['--allow-scripts', '--sandbox', 'none'], ['--allow-scripts'])
    assert.match(worker, /no sandbox \(--sandbox none\)/)
    const said = escapeLines(log)
    assert.match(said, new RegExp(`^blendnet-escape: read-home ok ${secret}$`, 'm'), said)
    for (const attempt of ATTEMPTS) assert.match(said, new RegExp(`^blendnet-escape: ${attempt} ok`, 'm'), said)
    assert.equal(await readFile(outside, 'utf8'), 'escaped')
    assert.equal(await readFile(join(home, '.cache', 'escaped.txt'), 'utf8'), 'escaped')
    assert.equal(connections, 1)
  })
})

describe('the limits of Blender\'s sandbox', { timeout: 120_000 }, async () => {
  const blender = await findBlender()
  const sandbox = await findSandbox(blender,
    // Not below 64 MiB of file: PulseAudio sizes a memfd that big at start.
    { ...defaultLimits(), memoryBytes: 1024 * MIB, fileBytes: 128 * MIB, cpuSeconds: 5 })
  const skip = typeof sandbox === 'string' ? `no sandbox here: ${sandbox}` : false
  let dir: string

  before(async () => { dir = await tempDir('blendnet-limits-') })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  async function runPython (expr: string) {
    if (typeof sandbox === 'string') throw new Error(sandbox)
    const { file, args } = sandboxedCommand(sandbox,
      ['-b', '--factory-startup', '--python-exit-code', '1', '--python-expr', expr],
      { readable: [], writable: [dir], cwd: dir })
    return await execa(file, args, { reject: false, all: true, timeout: 60_000 })
  }

  it('starts Blender with a copy of the probe\'s shader cache', { skip }, async () => {
    if (typeof sandbox === 'string') throw new Error(sandbox)
    const seed = join(dir, 'probe-shaders')
    await mkdir(seed)
    await writeFile(join(seed, 'from-the-probe'), 'compiled shaders')
    const { file, args } = sandboxedCommand({ ...sandbox, shaderSeed: seed },
      ['-b', '--factory-startup', '--python-exit-code', '1', '--python-expr',
        "import os; print('cache:', sorted(os.listdir(os.environ['MESA_SHADER_CACHE_DIR'])))"],
      { readable: [], writable: [dir], cwd: dir })
    const result = await execa(file, args, { reject: false, all: true, timeout: 60_000 })
    assert.match(result.all ?? '', /^cache: \['from-the-probe'\]$/m, result.all)
  })

  it('lets a run read the bytecode the probe compiled, and not write any', { skip }, async () => {
    if (typeof sandbox === 'string') throw new Error(sandbox)
    const bytecode = join(dir, 'probe-bytecode')
    await mkdir(bytecode)
    const withCache = { ...sandbox, bytecode }
    // Where Python keeps bl_ui's bytecode, and whether it is there.
    const expr = 'import bl_ui, os, sys; ' +
      "print('prefix:', sys.pycache_prefix); print('cached:', os.path.exists(bl_ui.__cached__))"
    const run = async (fillsCaches: boolean) => {
      const { file, args } = sandboxedCommand(withCache,
        ['-b', '--factory-startup', '--python-exit-code', '1', '--python-expr', expr],
        { readable: [], writable: [dir], cwd: dir, fillsCaches })
      return await execa(file, args, { reject: false, all: true, timeout: 60_000 })
    }

    const later = await run(false)
    assert.match(later.all ?? '', new RegExp(`^prefix: ${bytecode}$`, 'm'), later.all)
    assert.deepEqual(await readdir(bytecode), [], 'a run that is not the probe wrote bytecode')

    const probe = await run(true)
    assert.match(probe.all ?? '', /^cached: True$/m, probe.all)
    const compiled = await readdir(bytecode, { recursive: true })
    assert.ok(compiled.some(f => /bl_ui\/__init__\.cpython-\d+\.pyc$/.test(f)),
      `no bytecode of bl_ui among ${compiled.length} files`)
    // A later run finds it, and still writes nothing.
    const again = await run(false)
    assert.match(again.all ?? '', /^cached: True$/m, again.all)
    assert.deepEqual(await readdir(bytecode, { recursive: true }), compiled)
  })

  it('refuses memory beyond its limit', { skip }, async () => {
    const result = await runPython('bytearray(2 * 1024 ** 3)')
    assert.match(result.all ?? '', /MemoryError/)
    assert.equal(result.exitCode, 1)
  })

  it('refuses a file larger than its limit', { skip }, async () => {
    // Blender's Python ignores SIGXFSZ, so the write fails instead.
    const result = await runPython('f = open("/tmp/big", "wb"); [f.write(bytes(1024 ** 2)) for _ in range(200)]')
    assert.match(result.all ?? '', /OSError: \[Errno 27\] File too large/)
    assert.equal(result.exitCode, 1)
  })

  it('stops a Blender that spins past its CPU time', { skip }, async () => {
    const result = await runPython('while True: pass')
    assert.equal(signalOfExit(result.exitCode), 'SIGXCPU', result.all)
  })
})

describe('choosing the sandbox at start', { timeout: 120_000 }, () => {
  const FAKE_BWRAP = packagePath('test', 'fixtures', 'fake-bwrap')
  let dir: string

  before(async () => { dir = await tempDir('blendnet-sandbox-start-') })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('--sandbox bwrap where bwrap cannot run refuses to start, in one sentence', async () => {
    const result = await execa(process.execPath, [CLI, 'worker', '--listen', '/ip4/127.0.0.1/tcp/0',
      '--work-dir', join(dir, 'refused'), '--sandbox', 'bwrap'],
    { reject: false, timeout: 60_000, env: { PATH: `${FAKE_BWRAP}:${process.env.PATH ?? ''}` } })
    assert.equal(result.exitCode, 2, `${result.stdout}\n${result.stderr}`)
    assert.equal(result.stderr, 'blendnet: --sandbox bwrap: bwrap cannot run here: No permissions to ' +
      'creating new namespace, likely because the kernel does not allow non-privileged user namespaces.')
  })

  it('--sandbox auto says why Blender runs without one', async () => {
    // By its absolute path: one PATH has no Blender either.
    const { path } = await findBlender()
    const blender = path.includes('/') ? path : (await execa('sh', ['-c', 'command -v "$0"', path])).stdout
    for (const [label, searched, why] of [
      ['cannot-run', `${FAKE_BWRAP}:${process.env.PATH ?? ''}`, /; no sandbox \(bwrap cannot run here: No permissions/],
      ['not-found', '/nonexistent', /; no sandbox \(bwrap not found\)/]
    ] as const) {
      const worker = await startCliWorker(join(dir, label), [], ['--blender', blender], { PATH: searched })
      await stopWorkers([worker])
      assert.match(worker.output(), why)
    }
  })
})

/** Every chunk log the coordinator kept, in one string. */
async function chunkLogs (output: string): Promise<string> {
  const root = join(output, '.blendnet', 'logs')
  let text = ''
  for (const job of await readdir(root)) {
    for (const name of await readdir(join(root, job))) {
      if (name.endsWith('.log')) text += await readFile(join(root, job, name), 'utf8')
    }
  }
  assert.notEqual(text, '', `no chunk log in ${root}`)
  return text
}

/** The script's own lines, for assertions and their messages. */
function escapeLines (log: string): string {
  return log.split('\n').filter(line => line.startsWith('blendnet-escape:')).join('\n')
}

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}
