/**
 * scripts/install.sh, the installer the VPS instructions and the
 * Dockerfile use, run into a temporary prefix: the installed `blendnet`
 * runs from its link, a second run changes nothing that is up to date,
 * and it refuses, before touching anything, a prefix that holds other
 * files or a `blendnet` in the bin folder that is not its link.
 */
import assert from 'node:assert/strict'
import { cp, lstat, mkdir, readFile, readlink, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { packagePath } from '../../src/common/paths.js'
import { TEST_ENV } from '../helpers/cli.js'
import { tempDir } from '../helpers/swarm.js'

async function onPath (command: string): Promise<boolean> {
  return (await execa('sh', ['-c', `command -v ${command}`], { reject: false })).exitCode === 0
}

const npmMissing = !(await onPath('npm'))
/** With every Debian package there, the script runs no apt-get. */
const renderTools = (await Promise.all(['blender', 'bwrap', 'ffmpeg'].map(onPath))).every(Boolean)

/** What install.sh copies from a checkout, and the script itself. */
const CHECKOUT = ['package.json', 'package-lock.json', 'tsconfig.json', 'bin', 'scripts', 'src', 'proto']

async function install (checkout: string, args: string[], env: Record<string, string> = {}) {
  const result = await execa('bash', [join(checkout, 'scripts', 'install.sh'), '--no-apt', '--node', process.execPath,
    ...(renderTools ? [] : ['--no-blender']), ...args], { reject: false, timeout: 600_000, env })
  return { code: result.exitCode, out: String(result.stdout), err: String(result.stderr) }
}

describe('scripts/install.sh', { timeout: 900_000, skip: npmMissing && 'npm is not installed (Debian: apt-get install npm)' }, () => {
  let dir: string
  let prefix: string
  let binDir: string
  /** A copy of this checkout: a tree that does not change between runs. */
  let checkout: string

  async function installed (args: string[], env: Record<string, string> = {}) {
    const result = await execa(join(binDir, 'blendnet'), args, { reject: false, timeout: 60_000, env: { ...TEST_ENV, ...env } })
    return { code: result.exitCode, out: String(result.stdout), err: String(result.stderr) }
  }

  before(async () => {
    dir = await tempDir('blendnet-install-')
    prefix = join(dir, 'opt', 'blendnet')
    binDir = join(dir, 'bin')
    checkout = join(dir, 'checkout')
    for (const item of [...CHECKOUT, 'deploy']) await cp(packagePath(item), join(checkout, item), { recursive: true })
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('installs blendnet into the prefix, with a blendnet link that runs it', async () => {
    const result = await install(checkout, ['--prefix', prefix, '--bin-dir', binDir])
    assert.equal(result.code, 0, `${result.out}\n${result.err}`)
    assert.match(result.out, /^install: building$/m)
    assert.match(result.out, new RegExp(`^install: blendnet \\d+\\.\\d+\\.\\d+ installed in ${prefix}; the command is ${binDir}/blendnet$`, 'm'))
    assert.ok((await lstat(join(binDir, 'blendnet'))).isSymbolicLink())
    assert.equal(await readlink(join(binDir, 'blendnet')), join(prefix, 'bin', 'blendnet'))

    const help = await installed(['--help'])
    assert.equal(help.code, 0, help.err)
    assert.match(help.out, /^usage: blendnet <command>/)
    assert.match(help.out, /^ {2}status {4}list the workers of the swarm/m)
    const id = await installed(['id'])
    assert.equal(id.code, 0, id.err)
    assert.match(id.out, new RegExp(`^12D3KooW\\w+\\nkey ${TEST_ENV.BLENDNET_CONFIG_DIR}/identity\\.key`))
  })

  it('runs an installed worker with the small young generation that keeps it under 120 MB', async () => {
    const worker = execa(join(binDir, 'blendnet'), ['worker', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns',
      '--work-dir', join(dir, 'worker'), '--sandbox', 'none'], { reject: false, env: TEST_ENV, all: true, buffer: false })
    try {
      await new Promise<void>((resolve, reject) => {
        let seen = ''
        worker.all?.on('data', (d: Buffer) => { seen += d.toString(); if (/\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//.test(seen)) resolve() })
        void worker.then(() => { reject(new Error(`the worker exited:\n${seen}`)) })
      })
      // The wrapper execs Node: the worker's own command line.
      const cmdline = (await readFile(`/proc/${worker.pid}/cmdline`, 'utf8')).split('\0')
      assert.ok(cmdline.includes('--max-semi-space-size=1'), cmdline.join(' '))
      assert.ok(cmdline.includes(join(prefix, 'app', 'dist', 'blendnet.mjs')), cmdline.join(' '))
    } finally {
      worker.kill('SIGTERM')
      await worker
    }
  })

  it('runs again without reinstalling or rebuilding what is up to date', async () => {
    const before = await installed(['id'])
    const result = await install(checkout, ['--prefix', prefix, '--bin-dir', binDir])
    assert.equal(result.code, 0, `${result.out}\n${result.err}`)
    assert.match(result.out, /^install: build is up to date$/m)
    assert.doesNotMatch(result.out, /installing npm dependencies|^install: building$/m)
    assert.equal((await installed(['id'])).out.split('\n')[0], before.out.split('\n')[0])
  })

  it('keeps the installed blendnet when an update does not build, and rebuilds a good one', async () => {
    const idCommand = join(checkout, 'src', 'cli', 'id-command.ts')
    const good = await readFile(idCommand, 'utf8')
    await writeFile(idCommand, `${good}\nexport const broken: number = 'not a number'\n`)
    const failed = await install(checkout, ['--prefix', prefix, '--bin-dir', binDir])
    assert.equal(failed.code, 1, failed.out)
    assert.match(failed.err, /^install: the build failed \(see above\); the blendnet installed before is unchanged$/m)
    assert.equal((await installed(['id'])).code, 0)

    await writeFile(idCommand, good.replace('Prints the peer ID', 'Prints, updated, the peer ID'))
    const updated = await install(checkout, ['--prefix', prefix, '--bin-dir', binDir])
    assert.equal(updated.code, 0, `${updated.out}\n${updated.err}`)
    assert.match(updated.out, /^install: building$/m)
    assert.match((await installed(['id', '--help'])).out, /Prints, updated, the peer ID/)
  })

  it('stages the worker unit for its prefix, with settings the worker reads', async () => {
    const units = join(dir, 'systemd')
    const etc = join(dir, 'etc')
    const peer = '/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWNBWyzU9s8ZNu629yGBShyyxHLSehyVTyHXYs5DBynoCC'
    const staged = { BLENDNET_SYSTEMD_DIR: units, BLENDNET_ETC_DIR: etc }
    const result = await install(checkout, ['--prefix', prefix, '--bin-dir', binDir, '--service', 'worker', '--bootstrap', peer], staged)
    assert.equal(result.code, 0, `${result.out}\n${result.err}`)
    const unit = await readFile(join(units, 'blendnet-worker.service'), 'utf8')
    assert.match(unit, new RegExp(`^ExecStart=${prefix}/bin/blendnet worker `, 'm'))
    assert.doesNotMatch(unit, /^Exec\S*=\/opt\/blendnet/m)

    // The settings as systemd's EnvironmentFile reads them: KEY=value lines.
    const settings = Object.fromEntries((await readFile(join(etc, 'worker.env'), 'utf8')).split('\n')
      .filter(line => /^[A-Z_]+=/.test(line)).map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))
    assert.deepEqual(settings, { BLENDNET_WORKER_LISTEN: '/ip4/0.0.0.0/tcp/4001', BLENDNET_WORKER_BOOTSTRAP: peer })
    // Every setting is a flag the worker takes: it gets as far as Blender.
    const worker = await installed(['worker', '--blender', join(dir, 'no-blender')], settings)
    assert.equal(worker.code, 2, worker.out)
    assert.match(worker.err, /no-blender/)
    assert.doesNotMatch(worker.err, /BLENDNET_WORKER_|--bootstrap|--listen/)

    // Settings someone else wrote are never replaced.
    await writeFile(join(etc, 'worker.env'), 'BLENDNET_WORKER_ALLOW_SCRIPTS=1\n')
    const again = await install(checkout, ['--prefix', prefix, '--bin-dir', binDir, '--service', 'worker', '--bootstrap', peer], staged)
    assert.equal(again.code, 1, again.out)
    assert.match(again.err, /worker\.env was written by someone else/)
    assert.equal(await readFile(join(etc, 'worker.env'), 'utf8'), 'BLENDNET_WORKER_ALLOW_SCRIPTS=1\n')
  })

  it('refuses, changing nothing, a prefix of other files, the root, or a blendnet that is not its link', async () => {
    const other = join(dir, 'someone-elses')
    await mkdir(other)
    await writeFile(join(other, 'keep.txt'), 'mine')
    const foreignBin = join(dir, 'foreign-bin')
    await mkdir(foreignBin)
    await writeFile(join(foreignBin, 'blendnet'), '#!/bin/sh\necho another blendnet\n')
    const cases: Array<[string[], RegExp]> = [
      [['--prefix', other, '--bin-dir', binDir], /holds files of something else; give blendnet an empty or new folder/],
      [['--prefix', '/', '--bin-dir', binDir], /--prefix \/ would install into the root folder/],
      [['--prefix', 'relative/opt', '--bin-dir', binDir], /--prefix must be an absolute path/],
      [['--prefix', join(dir, 'new-prefix'), '--bin-dir', foreignBin], /foreign-bin\/blendnet exists and is not a link/]
    ]
    for (const [args, message] of cases) {
      const result = await install(checkout, args)
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.out}\n${result.err}`)
      assert.match(result.err, message)
    }
    assert.deepEqual(await readdir(other), ['keep.txt'])
    assert.equal(await readFile(join(other, 'keep.txt'), 'utf8'), 'mine')
    assert.equal(await readFile(join(foreignBin, 'blendnet'), 'utf8'), '#!/bin/sh\necho another blendnet\n')
    assert.ok(!(await readdir(dir)).includes('new-prefix'), 'nothing was created')
  })
})
