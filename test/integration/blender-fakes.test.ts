/**
 * The chunk driver against fake Blenders (test/fixtures/fake-blender/),
 * each a tiny script that goes wrong in one way real Blender was seen to.
 * Every one of them must fail the chunk, whatever its exit code.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import {
  mkdir, mkdtemp, readdir, readFile, rm, writeFile
} from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProcessChunkRenderer } from '../../src/blender/driver.js'
import {
  BlenderNotFoundError, BlendUnreadableError, ChunkDirNotEmptyError,
  ChunkRenderError
} from '../../src/blender/errors.js'
import { findBlender } from '../../src/blender/install.js'
import { inspectBlend } from '../../src/blender/scene-info.js'
import { packagePath } from '../../src/common/paths.js'
import { fakeBlender } from '../fixtures/blender-scenes.js'

let dir: string
let blendPath: string
let count = 0

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'blendnet-fakes-'))
  blendPath = join(dir, 'shot.blend')
  await writeFile(blendPath, 'fake Blenders never read it')
})

after(async () => { await rm(dir, { recursive: true, force: true }) })

function render (fake: string, frames = [3, 4, 5], more = {}):
ReturnType<ProcessChunkRenderer['render']> {
  const renderer = new ProcessChunkRenderer(fakeBlender(fake))
  const chunkDir = join(dir, `chunk-${++count}`)
  return renderer.render({ blendPath, scene: 'Scene', frames, format: 'PNG',
    chunkDir, ...more })
}

/** Rejects with a ChunkRenderError whose reason matches `reason`. */
async function assertFails (
  promise: Promise<unknown>, reason: RegExp
): Promise<ChunkRenderError> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof ChunkRenderError, `not a ChunkRenderError: ${err}`)
  assert.match(err.reason, reason)
  assert.ok(!err.reason.includes('\n'), 'the reason is one line')
  return err
}

/** PIDs of the processes whose command line holds `text` (Linux). */
function pidsMentioning (text: string): number[] {
  return readdirSync('/proc').filter(name => /^\d+$/.test(name))
    .filter(pid => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)
      } catch {
        return false // it exited while we looked
      }
    }).map(Number)
}

/**
 * Renders frame 3 with `fake` and a hang timeout; returns the failure and
 * the PIDs that were rendering it when Blender printed its progress.
 */
async function renderHung (
  fake: string, hangTimeoutMs: number, reason: RegExp
): Promise<{ err: ChunkRenderError, pids: number[], chunkDir: string }> {
  const chunkDir = join(dir, `chunk-${++count}`)
  let pids: number[] = []
  const err = await assertFails(render(fake, [3], {
    chunkDir,
    hangTimeoutMs,
    onLogLine: (line: string) => {
      if (line.startsWith('Fra:')) pids = pidsMentioning(chunkDir + '/')
    }
  }), reason)
  return { err, pids, chunkDir }
}

/** The one Blender seen running is dead, and nothing else ran there. */
function assertAllGone (pids: number[], chunkDir: string): void {
  assert.equal(pids.length, 1, 'the fake Blender was found while it ran')
  assert.throws(() => process.kill(pids[0], 0), { code: 'ESRCH' })
  assert.deepEqual(pidsMentioning(chunkDir + '/'), [])
}

describe('chunk driver with fake Blenders', () => {
  it('accepts a Blender that renders exactly the plan', async () => {
    const saved: number[] = []
    const result = await render('blender-renders-well', [-1, 0, 1],
      { onFrameSaved: (frame: number) => { saved.push(frame) } })
    assert.deepEqual(result.frames.map(f => f.frame), [-1, 0, 1])
    assert.deepEqual(saved, [-1, 0, 1])
    assert.match(await readFile(result.logPath, 'utf8'), /Blender quit/)
  })

  it('keeps rendering when a caller callback throws', async () => {
    const result = await render('blender-renders-well', [1, 2], {
      onFrameSaved: () => { throw new Error('display broke') },
      onLogLine: () => { throw new Error('display broke') }
    })
    assert.equal(result.frames.length, 2)
  })

  it('fails a Blender that exits 0 having saved nothing (B03)', async () => {
    await assertFails(render('blender-renders-nothing'),
      /never saved frames 3, 4, 5/)
  })

  it('fails a Python traceback although Blender exits 0 (B04)', async () => {
    const err = await assertFails(render('blender-python-error'),
      /NameError: name 'setup_shot' is not defined/)
    assert.equal(err.exitCode, 0)
  })

  it('fails frames saved outside the chunk dir (B01)', async () => {
    await assertFails(render('blender-saves-outside'),
      /elsewhere\/frame_0003\.png" outside the chunk directory/)
  })

  it('fails an extra, a missing and a repeated frame (B02)', async () => {
    await assertFails(render('blender-renders-extra-frame'),
      /"frame_0006\.png", which is not a planned frame/)
    await assertFails(render('blender-skips-a-frame'),
      /never saved frames 4$/)
    await assertFails(render('blender-renders-frame-twice'),
      /saved more than once: 3/)
  })

  it('accepts nothing saved before the .blend was read (B07)', async () => {
    await assertFails(render('blender-saves-before-reading'),
      /frame_0003\.png" before reading the \.blend file/)
  })

  it('fails a 0-byte frame and a stray file (B26, B29)', async () => {
    await assertFails(render('blender-writes-empty-frame'),
      /"frame_0005\.png" is empty/)
    await assertFails(render('blender-leaves-stray-file'),
      /unexpected "0001\.png"/)
  })

  it("fails when Blender can't find the scene and renders another (B14)",
    async () => {
      await assertFails(render('blender-loses-scene'),
        /Can't find scene 'Scene'/)
    })

  it('kills a hanging Blender at the timeout and says so', async () => {
    const started = Date.now()
    const err = await assertFails(
      render('blender-hangs', [3], { timeoutMs: 1500 }),
      /killed after the 1\.5 s time limit; last progress: Fra:3 /)
    assert.equal(err.timedOut, true)
    assert.ok(Date.now() - started < 10_000)
  })

  it('stops a Blender silent for the hang timeout, naming its last line',
    async () => {
      const started = Date.now()
      const { err, pids, chunkDir } = await renderHung('blender-hangs', 1500,
        /^Blender hung: no output for 1\.5 s \(last line: "Fra:3 Mem:.*"\)$/)
      assert.ok(Date.now() - started < 5000)
      assert.equal(err.hung, true)
      assert.equal(err.timedOut, false)
      assert.equal(err.signal, 'SIGTERM')
      assertAllGone(pids, chunkDir)
    })

  it('SIGKILLs a hung Blender that ignores SIGTERM', async () => {
    const { err, pids, chunkDir } = await renderHung(
      'blender-hangs-ignoring-sigterm', 500, /^Blender hung: no output/)
    assert.equal(err.signal, 'SIGKILL')
    assertAllGone(pids, chunkDir)
  })

  it('lets a slow Blender finish while it keeps printing progress',
    async () => {
      const started = Date.now()
      const result = await render('blender-renders-slowly', [3, 4],
        { hangTimeoutMs: 1000 })
      assert.deepEqual(result.frames.map(f => f.frame), [3, 4])
      assert.ok(Date.now() - started > 2000, 'slower than the hang timeout')
    })

  it('never calls a Blender hung with a hang timeout of 0', async () => {
    const err = await assertFails(
      render('blender-hangs', [3], { hangTimeoutMs: 0, timeoutMs: 1500 }),
      /killed after the 1\.5 s time limit/)
    assert.equal(err.hung, false)
  })

  it('kills a Blender when the render is aborted', async () => {
    const controller = new AbortController()
    const rendering = render('blender-hangs', [3], {
      signal: controller.signal,
      onLogLine: (line: string) => {
        if (line.startsWith('Fra:')) controller.abort()
      }
    })
    const err = await assertFails(rendering, /cancelled/)
    assert.equal(err.cancelled, true)
  })

  it('reports the signal and the last progress of a crash', async () => {
    const err = await assertFails(render('blender-crashes-sigsegv', [7]),
      /^Blender died of SIGSEGV; last progress: Fra:7 /)
    assert.equal(err.signal, 'SIGSEGV')
    assert.ok(err.logTail.some(l => l.startsWith('Fra:7')))
  })

  it('reports a Blender that cannot be started', async () => {
    const renderer = new ProcessChunkRenderer(
      { ...fakeBlender('x'), path: join(dir, 'no-such-blender') })
    const err = await assertFails(renderer.render({ blendPath, scene: 'Scene',
      frames: [1], format: 'PNG', chunkDir: join(dir, 'never-started') }),
    /^Blender could not be started: spawn .*no-such-blender ENOENT$/)
    assert.equal(err.exitCode, undefined)
  })

  it('refuses a chunk dir that already holds files', async () => {
    const chunkDir = join(dir, 'used')
    await mkdir(chunkDir)
    await writeFile(join(chunkDir, 'frame_0003.png'), '')
    const renderer =
      new ProcessChunkRenderer(fakeBlender('blender-renders-well'))
    await assert.rejects(renderer.render({ blendPath, scene: 'Scene',
      frames: [3], format: 'PNG', chunkDir }), ChunkDirNotEmptyError)
    assert.deepEqual(await readdir(chunkDir), ['frame_0003.png'])
  })

  it('refuses impossible plans before starting Blender', async () => {
    await assert.rejects(render('blender-renders-well', []), RangeError)
    await assert.rejects(render('blender-renders-well', [1, 1]), RangeError)
    await assert.rejects(render('blender-renders-well', [1.5]), RangeError)
    await assert.rejects(render('blender-renders-well', [1],
      { hangTimeoutMs: -1 }), /hang timeout must be 0 \(off\) to/)
    await assert.rejects(render('blender-renders-well', [1],
      { hangTimeoutMs: NaN }), RangeError)
  })
})

describe('inspectBlend with fake Blenders', () => {
  it('reports a Blender that crashes while loading the file (B22)',
    async () => {
      const blender = fakeBlender('blender-crashes-sigsegv')
      await assert.rejects(inspectBlend(blender, blendPath), (err: unknown) => {
        assert.ok(err instanceof BlendUnreadableError)
        assert.equal(err.reason, 'Blender died of SIGSEGV while loading it')
        assert.match(err.message, /^Blender 3\.4\.1 cannot read ".*shot\.blend"/)
        return true
      })
    })
})

describe('inspectBlend without Blender', () => {
  it('throws BlenderNotFoundError, not a verdict on the file', async () => {
    const blender = { ...fakeBlender('x'), path: join(dir, 'no-blender') }
    await assert.rejects(inspectBlend(blender, blendPath),
      /Blender at ".*no-blender" could not be started \(spawn .*ENOENT\)/)
  })
})

describe('findBlender', () => {
  it('finds the real Blender and its version', async () => {
    const blender = await findBlender()
    assert.match(blender.version, /^\d+\.\d+\.\d+$/)
    assert.ok(blender.major >= 2)
  })

  it('prefers an explicit path, then BLENDNET_BLENDER', async () => {
    const fake = fakeBlender('blender-renders-well').path
    assert.equal((await findBlender(fake)).path, fake)
    const saved = process.env.BLENDNET_BLENDER
    process.env.BLENDNET_BLENDER = fake
    try {
      assert.equal((await findBlender()).path, fake)
    } finally {
      if (saved === undefined) delete process.env.BLENDNET_BLENDER
      else process.env.BLENDNET_BLENDER = saved
    }
  })

  it('names the path and the fix when there is no Blender', async () => {
    const missing = join(dir, 'no-such-blender')
    await assert.rejects(findBlender(missing), (err: unknown) => {
      assert.ok(err instanceof BlenderNotFoundError)
      assert.match(err.message, /no-such-blender" does not exist; install/)
      assert.match(err.message, /BLENDNET_BLENDER/)
      return true
    })
    const other = packagePath('test', 'fixtures', 'fake-blender', 'not-blender')
    await assert.rejects(findBlender(other),
      /did not print a Blender version \(it printed "Python 3\.11\.7"\)/)
  })
})
