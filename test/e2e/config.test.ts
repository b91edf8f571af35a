/**
 * Config files as a user writes them: a worker started with nothing but
 * `--config`, a submit that finds ./blendnet.toml in its folder, paths
 * read next to the file, and mistakes in the file or the environment as
 * one sentence naming the file and the key, with exit code 2.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
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
const FAKE = packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts')

/** `blendnet ...` from `cwd`, reading ./blendnet.toml there unless BLENDNET_CONFIG is set. */
function blendnet (args: string[], cwd: string, env: Record<string, string> = {}) {
  return execa(process.execPath, [CLI, ...args], {
    cwd, all: true, buffer: false, reject: false, env: { ...TEST_ENV, BLENDNET_CONFIG: '', ...env }
  })
}

async function finished (args: string[], cwd: string, env: Record<string, string> = {}) {
  const proc = blendnet(args, cwd, env)
  let out = ''
  let err = ''
  proc.stdout?.on('data', (data: Buffer) => { out += data.toString() })
  proc.stderr?.on('data', (data: Buffer) => { err += data.toString() })
  const { exitCode } = await proc
  return { code: exitCode, out, err }
}

describe('config files from the command line', { timeout: 300_000 }, () => {
  let dir: string
  let project: string
  let scene: string
  let worker: ReturnType<typeof blendnet> | undefined

  before(async () => {
    dir = await tempDir('blendnet-config-e2e-')
    project = join(dir, 'project')
    await mkdir(project)
    scene = join(project, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: 4, width: SIDE, height: SIDE })
  })

  after(async () => {
    if (worker?.exitCode === null) { worker.kill('SIGTERM'); await worker }
    await rm(dir, { recursive: true, force: true })
  })

  it('a worker started with only --config and a submit reading ./blendnet.toml render a job', async () => {
    const keygen = await finished(['keygen', join(project, 'team.key')], dir)
    assert.equal(keygen.code, 0, keygen.err)
    const countLog = join(dir, 'rendered.log')
    await writeFile(join(project, 'blendnet.toml'), [
      '# shared: every command that has the flag',
      'swarm-key = "team.key"',
      'no-mdns = true',
      'listen = ["/ip4/127.0.0.1/tcp/0"]',
      '[worker]',
      'work-dir = "worker-cache"',
      `blender = "${FAKE}"`,
      'sandbox = "none"',
      'once = true',
      '[submit]',
      'output = "renders"',
      'frames = "1-4"',
      'chunk-size = 2'
    ].join('\n'))

    // Started from another folder: the file's paths are read next to it.
    worker = blendnet(['worker', '--config', join(project, 'blendnet.toml')], dir, {
      FAKE_BLENDER_COUNT_LOG: countLog, FAKE_BLENDER_FRAME_SIZE: String(SIDE)
    })
    let seen = ''
    const started = worker
    started.all?.on('data', (data: Buffer) => { seen += data.toString() })
    const addr = await new Promise<string>((resolve, reject) => {
      started.all?.on('data', () => {
        const match = /^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+)$/m.exec(seen)
        if (match !== null) resolve(match[1])
      })
      void started.then(() => { reject(new Error(`worker exited:\n${seen}`)) })
    })
    assert.match(seen, new RegExp(`^swarm: private \\(key ${join(project, 'team.key')},`, 'm'))
    assert.ok(seen.includes(`work dir ${join(project, 'worker-cache')}`), seen)
    assert.ok(seen.includes(`Blender at ${FAKE}`), seen)

    const submit = await finished(['submit', 'scene.blend'], project, { BLENDNET_SUBMIT_BOOTSTRAP: addr })
    assert.equal(submit.code, 0, `${submit.out}\n${submit.err}`)
    assert.deepEqual(await frameFiles(join(project, 'renders')),
      ['frame_0001.png', 'frame_0002.png', 'frame_0003.png', 'frame_0004.png'])
    assert.equal((await readFile(countLog, 'utf8')).trim().split('\n').length, 4)

    // once = true in the file: the worker leaves when its job is done.
    const { exitCode } = await started
    assert.equal(exitCode, 0, seen)
    assert.match(seen, /worker finished its job and removed its work files/)
  })

  it('a mistake in the file or the environment is one sentence naming the file and key, and exit 2', async () => {
    const bad = join(dir, 'bad.toml')
    const cases: Array<[string, string[], Record<string, string>, string]> = [
      ['[worker]\nlisen = ["/ip4/127.0.0.1/tcp/0"]\n', ['worker', '--config', bad], {},
        `blendnet: ${bad}: worker.lisen is not an option of blendnet worker (did you mean listen?)`],
      ['[worker]\nhang-timeout = "5x"\n', ['worker', '--config', bad], {},
        `blendnet: ${bad}: worker.hang-timeout "5x" is not a duration; write it like 90s, 10m or 1h30m`],
      ['[submit]\nchunk-size = 0\n', ['submit', scene, '--output', join(dir, 'out'), '--config', bad], {},
        `blendnet: ${bad}: submit.chunk-size must be a whole number of at least 1, not "0"`],
      ['', ['worker', '--config', bad], { BLENDNET_WORKER_SANDBOX: 'maybe' },
        'blendnet: BLENDNET_WORKER_SANDBOX must be auto, bwrap, none, not "maybe"'],
      ['', ['worker', '--config', join(dir, 'missing.toml')], {},
        `blendnet: --config ${join(dir, 'missing.toml')} does not exist`]
    ]
    for (const [toml, args, env, sentence] of cases) {
      await writeFile(bad, toml)
      const result = await finished(args, dir, env)
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.out}\n${result.err}`)
      assert.equal(result.err.trim(), sentence)
      assert.doesNotMatch(result.out, /others can join|listening/)
    }
  })

  it('a blendnet.toml in the folder is optional, and the tests\' own runs never read one', async () => {
    const empty = join(dir, 'no-config-here')
    await mkdir(empty)
    const help = await finished(['worker', '--help'], empty)
    assert.equal(help.code, 0, help.err)

    await writeFile(join(empty, 'blendnet.toml'), '[worker]\nlisen = 1\n')
    const read = await finished(['worker'], empty)
    assert.equal(read.code, 2)
    assert.match(read.err, /worker\.lisen is not an option/)
    const ignored = await finished(['worker', '--sandbox', 'maybe'], empty, { BLENDNET_CONFIG: TEST_ENV.BLENDNET_CONFIG })
    assert.equal(ignored.err.trim(), 'blendnet: --sandbox must be auto, bwrap, none, not "maybe"')
  })
})
