/**
 * A user's mistakes end in one sentence and exit code 2, and leave
 * nothing behind: the file, frames and output before any network work,
 * what only Blender's reading of the scene finds before any job is
 * announced.
 */
import assert from 'node:assert/strict'
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { findBlender } from '../../src/blender/install.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { pngBytes } from '../helpers/fake-renderers.js'
import { execa } from 'execa'
import { CLI, runCli, TEST_ENV } from '../helpers/cli.js'
import { tempDir } from '../helpers/swarm.js'
import { gzipSync } from 'node:zlib'
import { createServer, type AddressInfo } from 'node:net'
import { readFile } from 'node:fs/promises'

describe('submit refuses bad input with one clear sentence', { timeout: 300_000 }, () => {
  let dir: string
  let scene: string

  before(async () => {
    dir = await tempDir('blendnet-errors-')
    scene = join(dir, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: 4 })
  })

  async function expectUsageError (args: string[], pattern: RegExp): Promise<void> {
    const result = await runCli(['submit', ...args], 120_000)
    assert.equal(result.exitCode, 2, `${result.stdout}\n${result.stderr}`)
    const message = (result.stderr as string).trim()
    assert.match(message, pattern)
    assert.equal(message.split('\n').length, 1, `one line, got:\n${message}`)
    assert.doesNotMatch(result.stdout as string, /coordinator/)
  }

  it('a scene file that does not exist', async () => {
    await expectUsageError([join(dir, 'nope.blend'), '--output', join(dir, 'o1')], /nope\.blend/)
  })

  it('a file that is not a .blend', async () => {
    const png = join(dir, 'picture.blend')
    await writeFile(png, pngBytes(4, 4, 0))
    await expectUsageError([png, '--output', join(dir, 'o2')], /is not a \.blend file/)
  })

  it('a .blend compressed twice', async () => {
    const twice = join(dir, 'twice.blend')
    await writeFile(twice, gzipSync(gzipSync(await readFile(scene))))
    await expectUsageError([twice, '--output', join(dir, 'o3')], /compressed twice/)
  })

  it('a .blend with a line break in its name, which Blender\'s log would cut', async () => {
    const odd = join(dir, 'two\nlines.blend')
    await writeFile(odd, await readFile(scene))
    await expectUsageError([odd, '--output', join(dir, 'o3b')], /"two\\nlines\.blend" has a line break or other control character in its name/)
  })

  it('a frame range that runs backwards', async () => {
    await expectUsageError([scene, '--frames', '10-1', '--output', join(dir, 'o4')], /runs backwards/)
  })

  it('an output folder that is a file', async () => {
    const file = join(dir, 'a-file')
    await writeFile(file, '')
    await expectUsageError([scene, '--output', file], /is a file, not a folder/)
  })

  it('an output folder that cannot be written', async () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere; a read-only folder cannot stop it.
      const ro = join(dir, 'is-a-file', 'below')
      await writeFile(join(dir, 'is-a-file'), '')
      await expectUsageError([scene, '--output', ro], /not writable: a part of the path is a file, not a folder \(ENOTDIR\)$/)
      return
    }
    const ro = join(dir, 'read-only')
    await mkdir(ro)
    await chmod(ro, 0o500)
    await expectUsageError([scene, '--output', ro], /not writable: permission denied \(EACCES\)$/)
  })

  it('an output folder to be made on a read-only filesystem says so, not "no such file"', async (t) => {
    // A read-only filesystem of our own: a tmpfs mounted read-only in a
    // mount namespace that only this command sees.
    const ro = join(dir, 'read-only-mount')
    await mkdir(ro)
    const mounting = `mount -t tmpfs -o ro tmpfs '${ro}' && exec "$0" "$@"`
    const result = await execa('unshare', ['-m', 'sh', '-c', mounting, process.execPath, CLI,
      'submit', scene, '--output', join(ro, 'frames')], { reject: false, env: TEST_ENV })
    if (/unshare|mount/.test(String(result.stderr)) && result.exitCode !== 2) {
      t.skip(`cannot mount a read-only filesystem here (needs root): ${String(result.stderr).trim()}`)
      return
    }
    assert.equal(result.exitCode, 2, String(result.stderr))
    assert.match(String(result.stderr).trim(), /frames" is not writable: the file system is read-only \(EROFS\)$/)
  })

  it('a scene name the file does not have', async () => {
    await expectUsageError([scene, '--scene', 'Nacht', '--output', join(dir, 'o5')], /"Nacht" is not in the file; its scenes are "Scene"/)
  })

  it('an unknown image format', async () => {
    await expectUsageError([scene, '--format', 'GIF', '--output', join(dir, 'o6')], /--format "GIF"/)
  })

  it('an unknown engine or device', async () => {
    await expectUsageError([scene, '--engine', 'LUXCORE', '--output', join(dir, 'o9')], /--engine "LUXCORE"/)
    await expectUsageError([scene, '--device', 'TPU', '--output', join(dir, 'o9')], /--device "TPU" must be CPU or GPU/)
  })

  it('a missing --output', async () => {
    await expectUsageError([scene], /--output/)
  })

  it('a --listen address in use, before anything is written to --output', async () => {
    const server = createServer()
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    const { port } = server.address() as AddressInfo
    try {
      const output = join(dir, 'o-listen')
      await expectUsageError([scene, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--output', output],
        /^blendnet: cannot listen on \/ip4\/127\.0\.0\.1\/tcp\/\d+: EADDRINUSE/)
      assert.deepEqual(await readdir(output).catch(() => []), [], 'no .blendnet/ in --output')
    } finally {
      server.close()
    }
  })

  it('a bootstrap address without a peer id', async () => {
    await expectUsageError([scene, '--output', join(dir, 'o7'), '--bootstrap', '/ip4/127.0.0.1/tcp/1'], /\/p2p\//)
  })

  it('left no output folder behind for the file errors', async () => {
    const entries = await readdir(dir)
    assert.ok(!entries.includes('o1') && !entries.includes('o2'), entries.join(', '))
  })

  // SIGHUP: the terminal or ssh session that ran it closed.
  for (const signal of ['SIGINT', 'SIGHUP'] as const) {
    it(`${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGHUP'} ends the job with a summary and exit 130`, async () => {
      const proc = execa(process.execPath, [CLI, 'submit', scene, '--output', join(dir, `o10-${signal}`),
        '--listen', '/ip4/127.0.0.1/tcp/0'], { reject: false, all: true, buffer: true, env: TEST_ENV })
      await new Promise<void>((resolve) => {
        proc.stdout?.on('data', (d: Buffer) => { if (/coordinator /.test(d.toString())) resolve() })
      })
      proc.kill(signal)
      const result = await proc
      assert.equal(result.exitCode, 130, result.all as string)
      assert.match(result.stdout as string, /job failed: 4 of 4 frames not rendered/)
      assert.match(result.stdout as string, new RegExp(`frames 1-4: interrupted \\(${signal}\\)`))
    })
  }

  it('a file named .blendnet in --output is named before any network work', async () => {
    const output = join(dir, 'o13')
    await mkdir(output)
    await writeFile(join(output, '.blendnet'), 'not a folder')
    await expectUsageError([scene, '--output', output, '--listen', '/ip4/127.0.0.1/tcp/0'],
      /--output ".*o13" holds a file named \.blendnet, where blendnet keeps the job's journal and logs; move it away/)
  })

  it('refuses an --output inside /proc at once instead of hanging', async () => {
    const result = await runCli(['submit', scene, '--output', '/proc/blendnet-frames'], 30_000)
    assert.equal(result.exitCode, 2, result.stderr as string)
    assert.match(result.stderr as string, /is inside \/proc, a kernel filesystem/)
  })

  it('refuses a second submit into an --output another submit is using', async () => {
    const output = join(dir, 'busy-out')
    const first = execa(process.execPath, [CLI, 'submit', scene, '--output', output,
      '--listen', '/ip4/127.0.0.1/tcp/0', '--worker-wait', '60s'], { reject: false, all: true, env: TEST_ENV })
    await new Promise<void>((resolve) => {
      first.stdout?.on('data', (d: Buffer) => { if (/coordinator /.test(d.toString())) resolve() })
    })
    const second = await runCli(['submit', scene, '--output', output, '--listen', '/ip4/127.0.0.1/tcp/0'], 60_000)
    first.kill('SIGINT')
    await first
    assert.equal(second.exitCode, 2, `${second.stdout}\n${second.stderr}`)
    assert.match(second.stderr as string, new RegExp(`is in use by another submit \\(process ${first.pid}\\)`))
  })

  it('a folder where a frame goes, before any network work', async () => {
    const output = join(dir, 'o11')
    await mkdir(join(output, 'frame_0003.png'), { recursive: true })
    await expectUsageError([scene, '--frames', '1-4', '--output', output],
      /"frame_0003\.png" in --output ".*o11" is a folder, in the way of frame 3; move it away/)
    assert.deepEqual(await readdir(output), ['frame_0003.png'])
  })

  it('no worker within --worker-wait ends with exit 1 and a sentence', async () => {
    const result = await runCli(['submit', scene, '--output', join(dir, 'o8'), '--frames', '1-3,2-4', '--worker-wait', '2s',
      '--listen', '/ip4/127.0.0.1/tcp/0'], 60_000)
    assert.equal(result.exitCode, 1)
    assert.match(result.stdout as string, /^note: --frames names frames 2-3 more than once; each renders once$/m)
    assert.match(result.stdout as string, /no worker joined the swarm in time \(no peer was reached: check that a worker runs at the --bootstrap address/)
    assert.doesNotMatch(result.stdout as string, /not baked/, 'the demo scene simulates nothing')
  })

  it('a simulation that is not baked is named in a note before the job starts', async () => {
    const simulated = join(dir, 'falling.blend')
    await execa((await findBlender()).path, ['-b', '--factory-startup', scene, '--python-expr',
      'import bpy; bpy.context.view_layer.objects.active = bpy.data.objects["Sphere"]; ' +
      `bpy.ops.rigidbody.object_add(); bpy.ops.wm.save_as_mainfile(filepath=${JSON.stringify(simulated)})`])
    const result = await runCli(['submit', simulated, '--output', join(dir, 'o12'), '--worker-wait', '1s',
      '--listen', '/ip4/127.0.0.1/tcp/0'], 60_000)
    assert.equal(result.exitCode, 1, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout as string,
      /note: scene "Scene" has simulations that are not baked \(rigid body world\): .* bake them in Blender before submitting/)
  })
})

