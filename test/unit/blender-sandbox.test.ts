import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import {
  bwrapArgs, defaultLimits, hardLimit, limitArgs, newCacheDir, parseSandboxMode, sandboxedCommand,
  signalOfExit, type Sandbox, type SandboxMounts
} from '../../src/blender/sandbox.js'
import { UsageError } from '../../src/common/errors.js'

const GIB = 1024 ** 3

const SANDBOX: Sandbox = {
  bwrap: '/usr/bin/bwrap',
  blender: '/opt/blender-4.2/blender',
  readOnly: ['/opt/blender-4.2', '/src/blendnet/scripts/blender'],
  devices: [],
  limits: defaultLimits(4, 16 * GIB),
  shaderSeed: '/tmp/blendnet-shaders-x',
  bytecode: '/tmp/blendnet-bytecode-x'
}

const MOUNTS: SandboxMounts = {
  readable: ['/home/ann/.cache/blendnet/worker/jobs/P/J/files-ab'],
  writable: ['/home/ann/.cache/blendnet/worker/jobs/P/J/chunk-3-1-1'],
  cwd: '/home/ann/.cache/blendnet/worker/jobs/P/J/chunk-3-1-1'
}

const PARENT_ENV = {
  PATH: '/home/ann/bin:/usr/bin',
  HOME: '/home/ann',
  AWS_SECRET_ACCESS_KEY: 'hunter2',
  BLENDER_USER_SCRIPTS: '/home/ann/scripts',
  PYTHONPATH: '/home/ann/py',
  PYTHONSTARTUP: '/home/ann/start.py',
  OCIO: '/home/ann/ocio.config',
  CUDA_VISIBLE_DEVICES: '1'
}

/** Each `flag a b` triple of an argv, as "a -> b" per flag. */
function mounts (args: string[], flag: string): string[] {
  const found: string[] = []
  args.forEach((a, i) => { if (a === flag) found.push(`${args[i + 1]} -> ${args[i + 2]}`) })
  return found
}

/** `--setenv NAME VALUE` pairs, in order. */
function envOf (args: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  args.forEach((a, i) => { if (a === '--setenv') env[args[i + 1]] = args[i + 2] })
  return env
}

describe('the bubblewrap command line', () => {
  const args = bwrapArgs(SANDBOX, MOUNTS, PARENT_ENV)

  it('unshares every namespace, the network included, and keeps no capability', () => {
    for (const flag of ['--unshare-all', '--unshare-user', '--disable-userns', '--die-with-parent', '--new-session']) {
      assert.ok(args.includes(flag), flag)
    }
    assert.ok(!args.includes('--share-net'))
    assert.equal(args[args.indexOf('--cap-drop') + 1], 'ALL')
  })

  it('binds the system, Blender and the job files read-only, and only the chunk dir writable', () => {
    const readOnly = [...mounts(args, '--ro-bind'), ...mounts(args, '--ro-bind-try')]
    for (const dir of ['/usr', '/opt/blender-4.2', '/src/blendnet/scripts/blender', MOUNTS.readable[0]]) {
      assert.ok(readOnly.includes(`${dir} -> ${dir}`), dir)
    }
    assert.deepEqual(mounts(args, '--bind'), [`${MOUNTS.writable[0]} -> ${MOUNTS.writable[0]}`])
    assert.deepEqual(mounts(args, '--dev-bind'), [])
    assert.ok(!readOnly.some(m => m.startsWith('/ ') || m.startsWith('/home/ann ') ||
      m.startsWith('/etc ') || m.startsWith('/etc/passwd') || m.startsWith('/etc/shadow')), readOnly.join('\n'))
  })

  it('gives a private /tmp of bounded size, a fresh /dev and /proc, and a read-only root', () => {
    assert.equal(args[args.indexOf('--tmpfs') + 1], '/tmp')
    assert.equal(args[args.indexOf('--tmpfs') - 2], '--size')
    assert.equal(args[args.indexOf('--dev') + 1], '/dev')
    assert.equal(args[args.indexOf('--proc') + 1], '/proc')
    const remount = args.indexOf('--remount-ro')
    assert.equal(args[remount + 1], '/')
    // After every mount, or the folders made for them would stay writable.
    const lastMount = Math.max(...['--bind', '--ro-bind', '--ro-bind-try', '--tmpfs']
      .map(flag => args.lastIndexOf(flag)))
    assert.ok(remount > lastMount)
    assert.equal(args[args.indexOf('--chdir') + 1], MOUNTS.cwd)
  })

  it('binds the job files and the chunk dir after the tmpfs over /tmp', () => {
    const atTmp = args.indexOf('--tmpfs')
    assert.ok(args.indexOf(MOUNTS.readable[0]) > atTmp)
    assert.ok(args.indexOf(MOUNTS.writable[0]) > atTmp)
  })

  it('clears the environment and sets only a minimal one', () => {
    const cleared = args.indexOf('--clearenv')
    assert.ok(cleared >= 0)
    assert.ok(args.indexOf('--setenv') > cleared, 'a variable set before --clearenv is lost')
    assert.deepEqual(envOf(args), {
      PATH: '/usr/bin:/bin',
      HOME: '/tmp',
      TMPDIR: '/tmp',
      LANG: 'C.UTF-8',
      MESA_SHADER_CACHE_DIR: '/tmp/shader-cache',
      PYTHONPYCACHEPREFIX: '/tmp/blendnet-bytecode-x',
      CUDA_VISIBLE_DEVICES: '1'
    })
    assert.ok(!args.some(a => a.includes('hunter2') || a.includes('/home/ann/py')))
  })

  it('passes GPU devices through, with /sys for their drivers', () => {
    const gpu = bwrapArgs({ ...SANDBOX, devices: ['/dev/dri', '/dev/nvidia0'] }, MOUNTS, {})
    assert.deepEqual(mounts(gpu, '--dev-bind'), ['/dev/dri -> /dev/dri', '/dev/nvidia0 -> /dev/nvidia0'])
    assert.ok(mounts(gpu, '--ro-bind').includes('/sys -> /sys'))
    assert.ok(!mounts(args, '--ro-bind').includes('/sys -> /sys'))
  })

  it('lets the probe fill the shader cache and every later run copy it', () => {
    const probe = bwrapArgs(SANDBOX, { ...MOUNTS, fillsCaches: true }, {})
    assert.ok(mounts(probe, '--bind').includes('/tmp/blendnet-shaders-x -> /tmp/blendnet-shaders-x'))
    assert.equal(envOf(probe).MESA_SHADER_CACHE_DIR, '/tmp/blendnet-shaders-x')
    assert.ok(mounts(args, '--ro-bind').includes('/tmp/blendnet-shaders-x -> /tmp/blendnet-shaders-x'))
  })

  it('lets only the probe write Blender\'s bytecode; later runs read it', () => {
    const probe = bwrapArgs(SANDBOX, { ...MOUNTS, fillsCaches: true }, {})
    assert.ok(mounts(probe, '--bind').includes('/tmp/blendnet-bytecode-x -> /tmp/blendnet-bytecode-x'))
    assert.ok(!mounts(args, '--bind').includes('/tmp/blendnet-bytecode-x -> /tmp/blendnet-bytecode-x'))
    assert.ok(mounts(args, '--ro-bind').includes('/tmp/blendnet-bytecode-x -> /tmp/blendnet-bytecode-x'))
    assert.equal(envOf(probe).PYTHONPYCACHEPREFIX, '/tmp/blendnet-bytecode-x')
  })
})

describe('the sandboxed command', () => {
  it('runs Blender by its real path under prlimit, with its argv untouched', () => {
    const argv = ['-b', '/jobs/scène #1 & co.blend', '-o', '/x/frame_####']
    const { file, args } = sandboxedCommand(SANDBOX, argv, MOUNTS, {})
    assert.equal(file, '/usr/bin/bwrap')
    const command = args.slice(args.indexOf('--') + 1)
    assert.equal(command[0], 'prlimit')
    assert.deepEqual(command.slice(-argv.length - 1), [SANDBOX.blender, ...argv])
  })

  it('limits memory, CPU time, processes and file size, soft and hard', () => {
    assert.deepEqual(limitArgs({
      memoryBytes: 7 * GIB, cpuSeconds: 3600, processes: 128, fileBytes: 16 * GIB, tmpBytes: GIB
    }), ['prlimit', `--data=${7 * GIB}`, '--cpu=3600:3660', '--nproc=128', `--fsize=${16 * GIB}`,
      '--core=0', '--'])
  })
})

describe('sandbox limits and outcomes', () => {
  it('scales the default limits to the machine', () => {
    assert.deepEqual(defaultLimits(4, 16 * GIB), {
      memoryBytes: 14 * GIB, cpuSeconds: 4 * 86400, processes: 128, fileBytes: 16 * GIB, tmpBytes: GIB
    })
    assert.equal(defaultLimits(1, 2 * GIB).tmpBytes, GIB / 4)
  })

  it('reads hard limits from /proc/self/limits', () => {
    const table = [
      'Limit                     Soft Limit           Hard Limit           Units',
      'Max cpu time              unlimited            unlimited            seconds',
      'Max processes             4096                 8192                 processes'
    ].join('\n')
    assert.equal(hardLimit(table, 'Max processes'), 8192)
    assert.equal(hardLimit(table, 'Max cpu time'), undefined)
  })

  it('names the signal that killed a sandboxed Blender from bwrap\'s exit code', () => {
    assert.equal(signalOfExit(139), 'SIGSEGV')
    assert.equal(signalOfExit(152), 'SIGXCPU')
    assert.equal(signalOfExit(153), 'SIGXFSZ')
    assert.equal(signalOfExit(1), undefined)
    assert.equal(signalOfExit(undefined), undefined)
  })

  it('takes auto, bwrap or none for --sandbox', () => {
    assert.equal(parseSandboxMode(undefined), 'auto')
    assert.equal(parseSandboxMode('none'), 'none')
    assert.throws(() => parseSandboxMode('docker'), UsageError)
  })
})

describe('the folders the probe fills', () => {
  it('are refused in one sentence where the temp folder is missing', async () => {
    await assert.rejects(newCacheDir('/nonexistent-blendnet-tmp', 'bytecode'),
      (err: Error) => err instanceof UsageError &&
        /^cannot make a folder in the temp folder "\/nonexistent-blendnet-tmp" \(TMPDIR\): /.test(err.message))
  })

  it('is named for this process, and a start removes those of processes gone', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'blendnet-seeds-'))
    try {
      // A child that has exited: its pid is free (reuse in between is harmless: kept).
      const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
      await mkdir(join(parent, `blendnet-shaders-${gone}-AbC123`))
      await mkdir(join(parent, `blendnet-shaders-${process.pid}-XyZ789`))
      await mkdir(join(parent, `blendnet-bytecode-${gone}-DeF456`))
      await mkdir(join(parent, 'blendnet-shaders-old'))
      const seed = await newCacheDir(parent, 'shaders')
      assert.match(seed, new RegExp(`blendnet-shaders-${process.pid}-\\w+$`))
      const bytecode = await newCacheDir(parent, 'bytecode')
      assert.match(bytecode, new RegExp(`blendnet-bytecode-${process.pid}-\\w+$`))
      assert.deepEqual((await readdir(parent)).sort(),
        [basename(seed), basename(bytecode), `blendnet-shaders-${process.pid}-XyZ789`, 'blendnet-shaders-old'].sort())
    } finally {
      await rm(parent, { recursive: true, force: true })
    }
  })
})
