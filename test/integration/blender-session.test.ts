/**
 * Warm sessions (src/blender/session.ts) against the real Blender, on the
 * tiny scenes of test/fixtures/scenes/build_scenes.py. Chunks go through
 * one session out of order, as a worker may claim them, and must be
 * pixel-identical to plain `blender -b file.blend -f N`; a session that
 * dies, hangs or is cancelled must behave as a fresh Blender would.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { access, readdir, readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import {
  ProcessChunkRenderer, type ChunkRenderer, type ChunkRenderRequest, type ChunkRenderResult
} from '../../src/blender/driver.js'
import { ChunkRenderError } from '../../src/blender/errors.js'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { findSandbox } from '../../src/blender/sandbox.js'
import { SessionChunkRenderer } from '../../src/blender/session.js'
import { buildFixtures, fakeBlender, plainRender, type Fixtures } from '../fixtures/blender-scenes.js'
import { samePixels } from '../fixtures/pixels.js'

let blender: BlenderInstall
let fixtures: Fixtures
let renderer: SessionChunkRenderer

before(async () => {
  blender = await findBlender()
  fixtures = await buildFixtures(blender)
  renderer = new SessionChunkRenderer(blender)
})

after(async () => {
  await renderer.closeAll()
  await fixtures.remove()
})

/** Not in claim order: each chunk starts away from where the last ended. */
const ORDER = [[5, 6], [1, 2], [3, 4]]

const scene = (name: string): string => join(fixtures.dir, 'scenes', `${name}.blend`)

type Extra = Partial<ChunkRenderRequest>

/** Renders chunks of one job one after another, their dirs side by side. */
async function renderJob (
  name: string, chunks: number[][], extra: (i: number) => Extra = () => ({}),
  using: ChunkRenderer = renderer
): Promise<ChunkRenderResult[]> {
  const job = await fixtures.tempDir(name)
  const results: ChunkRenderResult[] = []
  for (const [i, frames] of chunks.entries()) {
    results.push(await using.render({ blendPath: scene(name), scene: 'Scene', frames,
      format: 'PNG', chunkDir: join(job, `chunk-${i}`), ...extra(i) }))
  }
  return results
}

/** The session and its chunk number a chunk's log names, if warm. */
async function sessionOf (logPath: string): Promise<{ pid: number, chunk: number } | undefined> {
  const m = /warm Blender session (\d+); its chunk (\d+) follows/.exec(await readFile(logPath, 'utf8'))
  return m === null ? undefined : { pid: Number(m[1]), chunk: Number(m[2]) }
}

function sessionInLine (line: string): number | undefined {
  const m = /warm Blender session (\d+);/.exec(line)
  return m === null ? undefined : Number(m[1])
}

async function assertSamePixels (results: ChunkRenderResult[], name: string): Promise<void> {
  const frames = results.flatMap(r => r.frames)
  const plainDir = await fixtures.tempDir(`${name}-plain`)
  await plainRender(blender, scene(name), plainDir, ['-f', frames.map(f => f.frame).join(',')])
  for (const { frame, path } of frames) {
    const plain = join(plainDir, `plain_${String(frame).padStart(4, '0')}.png`)
    assert.ok(await samePixels(path, plain), `${name}: frame ${frame} differs from blender -f ${frame}`)
  }
}

function isGone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

async function failure (promise: Promise<unknown>): Promise<ChunkRenderError> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof ChunkRenderError, `not a ChunkRenderError: ${String(err)}`)
  return err
}

describe('a warm Blender session', () => {
  for (const name of ['motion-blur', 'markers', 'modifier']) {
    it(`renders ${name}.blend out of order in one session, pixel-identical to blender -f`, async () => {
      const told: string[] = []
      const results = await renderJob(name, ORDER, () => ({ onFrameSaved: (_, path) => { told.push(path) } }))
      // A worker uploads frames as they are saved, until its next chunk.
      assert.equal(told.length, 6)
      for (const path of told.slice(-2)) await access(path)
      assert.equal(await sessionOf(results[0].logPath), undefined, 'the first chunk starts the session')
      const [second, third] = [await sessionOf(results[1].logPath), await sessionOf(results[2].logPath)]
      assert.deepEqual([second?.chunk, third?.chunk], [2, 3])
      assert.equal(second?.pid, third?.pid)
      await assertSamePixels(results, name)
      assert.ok(!await samePixels(results[0].frames[0].path, results[1].frames[0].path), 'frames 5 and 1 differ')
    })
  }

  it('renders a simulating scene in a fresh Blender per chunk, as a fresh process does', async () => {
    const results = await renderJob('rigid-body', ORDER)
    const fresh = await renderJob('rigid-body', ORDER, () => ({}), new ProcessChunkRenderer(blender))
    for (const [i, result] of results.entries()) {
      const log = await readFile(result.logPath, 'utf8')
      assert.match(log, /"event": "session", "warm": false, "reason": "scene 'Scene' has a rigid body world"/)
      assert.equal(await sessionOf(result.logPath), undefined)
      for (const [j, frame] of result.frames.entries()) {
        assert.ok(await samePixels(frame.path, fresh[i].frames[j].path), `frame ${frame.frame}`)
      }
    }
    const [particles] = await renderJob('particles', [[3]])
    assert.match(await readFile(particles.logPath, 'utf8'), /"reason": "a particle system on 'Sphere'"/)
  })

  it('fails a chunk inside the session alone; the next renders in the same session', async () => {
    const job = await fixtures.tempDir('fails-at-5')
    const render = async (i: number, frames: number[]): Promise<ChunkRenderResult> =>
      await renderer.render({ blendPath: scene('fails-at-5'), scene: 'Scene', frames, format: 'PNG', chunkDir: join(job, `chunk-${i}`) })
    await render(1, [1, 2])
    const err = await failure(render(2, [5, 6]))
    assert.equal(err.reason, 'Cannot render, no camera')
    assert.deepEqual(await readdir(dirname(err.logPath)), ['blender.log'])
    const after = await render(3, [3, 4])
    assert.equal((await sessionOf(after.logPath))?.pid, (await sessionOf(err.logPath))?.pid)
    assert.deepEqual(after.frames.map(f => basename(f.path)), ['frame_0003.png', 'frame_0004.png'])
  })

  it('renders the chunk in a fresh Blender when the session is killed mid-chunk, then starts a new one', async () => {
    let killed: number | undefined
    const results = await renderJob('moving', [[1, 2], [3, 4], [5, 6], [7, 8]], i => i !== 1
      ? {}
      : {
          onLogLine: (line: string) => {
            killed ??= sessionInLine(line)
            if (line.startsWith('Fra:') && killed !== undefined && !isGone(killed)) process.kill(killed, 'SIGKILL')
          }
        })
    assert.ok(killed !== undefined && isGone(killed))
    assert.equal(await sessionOf(results[1].logPath), undefined, 'chunk 2 was rendered by a fresh Blender')
    assert.equal(await sessionOf(results[2].logPath), undefined, 'chunk 3 started a new session')
    const fourth = await sessionOf(results[3].logPath)
    assert.equal(fourth?.chunk, 2)
    assert.notEqual(fourth?.pid, killed)
    await assertSamePixels(results, 'moving')
  })

  it('stops a silent session at the hang timeout and renders the chunk in a fresh Blender', async () => {
    let stopped: number | undefined
    const results = await renderJob('moving', [[1], [2]], i => i === 0
      ? {}
      : {
          hangTimeoutMs: 1500,
          onLogLine: (line: string) => {
            const pid = sessionInLine(line)
            if (pid !== undefined) { stopped = pid; process.kill(pid, 'SIGSTOP') }
          }
        })
    assert.ok(stopped !== undefined && isGone(stopped))
    assert.equal(await sessionOf(results[1].logPath), undefined)
    await assertSamePixels(results, 'moving')
  })

  it('kills the session at once when the chunk is cancelled', async () => {
    const controller = new AbortController()
    let pid: number | undefined
    const job = await fixtures.tempDir('cancel')
    const render = async (i: number, frames: number[], extra: Extra = {}): Promise<ChunkRenderResult> =>
      await renderer.render({ blendPath: scene('moving'), scene: 'Scene', frames, format: 'PNG', chunkDir: join(job, `chunk-${i}`), ...extra })
    await render(1, [1])
    const started = Date.now()
    const err = await failure(render(2, [2, 3], {
      signal: controller.signal,
      onLogLine: line => {
        pid ??= sessionInLine(line)
        if (line.startsWith('Fra:')) controller.abort()
      }
    }))
    assert.equal(err.cancelled, true)
    assert.ok(pid !== undefined && isGone(pid), 'the session is gone')
    assert.ok(Date.now() - started < 5000)
    const next = await render(3, [4])
    assert.equal(await sessionOf(next.logPath), undefined, 'a new session renders the next chunk')
  })

  it('ends the session and removes its folder when the job is closed', async () => {
    const results = await renderJob('moving', [[1], [2]])
    const session = await sessionOf(results[1].logPath)
    const job = dirname(dirname(results[1].logPath))
    assert.equal((await readdir(job)).filter(n => n.startsWith('session-')).length, 1)
    await renderer.close(scene('moving'))
    assert.ok(session !== undefined && isGone(session.pid))
    assert.deepEqual((await readdir(job)).filter(n => n.startsWith('session-')), [])
  })

  it('renders every chunk with a Blender that knows no sessions', async () => {
    const fake = new SessionChunkRenderer(fakeBlender('blender-renders-well'))
    const results = await renderJob('moving', ORDER, () => ({}), fake)
    for (const [i, result] of results.entries()) {
      assert.deepEqual(result.frames.map(f => f.frame), ORDER[i])
      assert.equal(await sessionOf(result.logPath), undefined)
    }
  })
})

describe('a warm Blender session in the sandbox', async () => {
  const sandbox = await findSandbox(await findBlender())
  const skip = typeof sandbox === 'string' ? `no sandbox here: ${sandbox}` : false

  it('renders later chunks in the same sandboxed session', { skip }, async () => {
    const sandboxed = new SessionChunkRenderer(blender, { sandbox: sandbox as Exclude<typeof sandbox, string> })
    try {
      const results = await renderJob('moving', [[3, 4], [1, 2]], () => ({}), sandboxed)
      assert.equal((await sessionOf(results[1].logPath))?.chunk, 2)
      await assertSamePixels(results, 'moving')
    } finally {
      await sandboxed.closeAll()
    }
  })
})
