/**
 * Standby Blenders (src/blender/standby.ts) against the real Blender: one
 * started before its job's files exist must render them pixel-identical
 * to plain `blender -b file.blend -f N`, and become the job's warm
 * session; what it cannot do as the command line would (another scene
 * than the active one, another format) it hands to a Blender started the
 * usual way; one that is dead, or out of reach of the job's files, is
 * never used.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { ChunkRenderRequest, ChunkRenderResult } from '../../src/blender/driver.js'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import { findSandbox, type Sandbox } from '../../src/blender/sandbox.js'
import { SessionChunkRenderer } from '../../src/blender/session.js'
import { buildFixtures, plainRender, type FixtureScene, type Fixtures } from '../fixtures/blender-scenes.js'
import { samePixels } from '../fixtures/pixels.js'

let blender: BlenderInstall
let fixtures: Fixtures

before(async () => {
  blender = await findBlender()
  fixtures = await buildFixtures(blender)
})

after(async () => {
  await fixtures.remove()
})

const READY = 'blendnet: standby Blender ready'

/** A submitter's folder as a worker lays it out: jobs/<peer>/<job>/files/. */
async function submitterFolder (name: FixtureScene): Promise<{ folder: string, blendPath: string, job: string }> {
  const folder = await fixtures.tempDir(`submitter-${name}`)
  const job = join(folder, 'job1')
  await mkdir(join(job, 'files'), { recursive: true })
  const blendPath = join(job, 'files', `${name}.blend`)
  await copyFile(fixtures.blend(name), blendPath)
  return { folder, blendPath, job }
}

interface StandbyCase { renderer: SessionChunkRenderer, folder: string, blendPath: string, job: string }

/** A renderer with a standby started for the submitter of a job of `name`. */
async function withStandby (name: FixtureScene, use: (c: StandbyCase) => Promise<void>): Promise<void> {
  const renderer = new SessionChunkRenderer(blender)
  try {
    const found = await submitterFolder(name)
    await renderer.standBy(found.folder)
    assert.equal((await standbyFolders(found.folder)).length, 1, 'a standby started')
    await use({ renderer, ...found })
  } finally {
    await renderer.closeAll()
  }
}

async function renderChunks (renderer: SessionChunkRenderer, blendPath: string, job: string,
  chunks: number[][], extra: Partial<ChunkRenderRequest> = {}): Promise<ChunkRenderResult[]> {
  const results: ChunkRenderResult[] = []
  for (const [i, frames] of chunks.entries()) {
    results.push(await renderer.render({ blendPath, scene: 'Scene', frames, format: 'PNG',
      chunkDir: join(job, `chunk-${i}`), ...extra }))
  }
  return results
}

async function assertLikePlain (results: ChunkRenderResult[], blendPath: string, label: string,
  before: string[] = []): Promise<void> {
  const frames = results.flatMap(r => r.frames)
  const plainDir = await fixtures.tempDir(`${label}-plain`)
  await plainRender(blender, blendPath, plainDir, ['-f', frames.map(f => f.frame).join(',')], before)
  for (const { frame, path } of frames) {
    const plain = join(plainDir, `plain_${String(frame).padStart(4, '0')}.png`)
    assert.ok(await samePixels(path, plain), `${label}: frame ${frame} differs from blender -f ${frame}`)
  }
}

function sessionPid (log: string): number | undefined {
  const m = /warm Blender session (\d+);/.exec(log)
  return m === null ? undefined : Number(m[1])
}

async function standbyFolders (folder: string): Promise<string[]> {
  return (await readdir(folder).catch(() => [])).filter(n => n.startsWith('standby-'))
}

describe('a standby Blender', () => {
  for (const name of ['motion-blur', 'markers', 'modifier'] as const) {
    it(`opens ${name}.blend for its first chunk, pixel-identical to blender -f, and stays warm`, async () => {
      await withStandby(name, async ({ renderer, blendPath, job }) => {
        const results = await renderChunks(renderer, blendPath, job, [[5, 6], [1, 2]])
        const [first, second] = await Promise.all(results.map(async r => await readFile(r.logPath, 'utf8')))
        assert.ok(first.includes(READY), 'the first chunk rendered in the standby')
        assert.ok(first.includes(`Read blend: ${blendPath}`), first)
        assert.ok(second.includes(READY), 'the next chunk replays the same start-up')
        assert.ok(sessionPid(second) !== undefined, 'the next chunk rendered warm')
        await assertLikePlain(results, blendPath, name)
      })
    })
  }

  it('hands a job for a scene other than the active one to a Blender started for it', async () => {
    await withStandby('multi', async ({ renderer, folder, blendPath, job }) => {
      const results = await renderChunks(renderer, blendPath, job, [[2], [3]], { scene: 'night' })
      const first = await readFile(results[0].logPath, 'utf8')
      assert.ok(!first.includes(READY), 'not rendered in the standby')
      assert.deepEqual(await standbyFolders(folder), [], 'the standby is gone, and its folder')
      assert.ok(sessionPid(await readFile(results[1].logPath, 'utf8')) !== undefined, 'the new session stays warm')
      await assertLikePlain(results, blendPath, 'multi-night', ['-S', 'night'])
    })
  })

  it('hands a file whose active scene is linked, beside a local one of its name, to a Blender started for it', async () => {
    await withStandby('linked-scene', async ({ renderer, blendPath, job }) => {
      await copyFile(join(fixtures.dir, 'scenes', 'linked-scene-lib.blend'), join(job, 'files', 'linked-scene-lib.blend'))
      // `-S Scene` renders the local scene: the standby's would have set
      // up the linked one and rendered the local one with its own output.
      const results = await renderChunks(renderer, blendPath, job, [[1], [4]])
      assert.ok(!(await readFile(results[0].logPath, 'utf8')).includes(READY))
      await assertLikePlain(results, blendPath, 'linked-scene', ['-S', 'Scene'])
    })
  })

  it('hands a job in another format than the scene saves to a Blender started for it', async () => {
    await withStandby('movie', async ({ renderer, blendPath, job }) => {
      const [result] = await renderChunks(renderer, blendPath, job, [[1, 2]])
      assert.ok(!(await readFile(result.logPath, 'utf8')).includes(READY))
      assert.deepEqual(result.frames.map(f => f.frame), [1, 2])
      await assertLikePlain([result], blendPath, 'movie')
    })
  })

  it('is not used once dead, nor for files out of its reach, and is stopped then', async () => {
    const renderer = new SessionChunkRenderer(blender)
    try {
      const { folder, blendPath, job } = await submitterFolder('moving')
      await renderer.standBy(folder)
      process.kill(await standbyPid(folder), 'SIGKILL')
      const [killed] = await renderChunks(renderer, blendPath, job, [[1]])
      assert.ok(!(await readFile(killed.logPath, 'utf8')).includes(READY))
      await renderer.closeAll()

      const other = await submitterFolder('moving')
      // The standby waits out the interval between two starts.
      const later = new SessionChunkRenderer(blender)
      try {
        await later.standBy(folder)
        const [elsewhere] = await renderChunks(later, other.blendPath, other.job, [[2]])
        assert.ok(!(await readFile(elsewhere.logPath, 'utf8')).includes(READY))
        assert.deepEqual(await standbyFolders(folder), [], 'the unused standby is stopped')
      } finally {
        await later.closeAll()
      }
    } finally {
      await renderer.closeAll()
    }
  })

  it('goes when a job that runs the file\'s Python renders, in fresh Blenders', async () => {
    await withStandby('moving', async ({ renderer, folder, blendPath, job }) => {
      const [result] = await renderChunks(renderer, blendPath, job, [[1]], { allowScripts: true })
      assert.ok(!(await readFile(result.logPath, 'utf8')).includes(READY))
      assert.deepEqual(await standbyFolders(folder), [])
    })
  })

  it('starts no second one soon after the first, and goes when dropped', async () => {
    await withStandby('moving', async ({ renderer, folder }) => {
      await renderer.dropStandby(join(folder, '..', 'someone-else'))
      assert.equal((await standbyFolders(folder)).length, 1, 'another submitter leaving does not stop it')
      await renderer.dropStandby(folder)
      assert.deepEqual(await standbyFolders(folder), [])
      await renderer.standBy(folder)
      assert.deepEqual(await standbyFolders(folder), [], 'none within the interval')
    })
  })
})

/** The standby's Blender, found by the outbox it runs in. */
async function standbyPid (folder: string): Promise<number> {
  const [name] = await standbyFolders(folder)
  const outbox = join(folder, name)
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '')
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '')
    if (cwd === outbox && comm.trim() === 'blender') return Number(entry)
  }
  throw new Error(`no Blender runs in ${outbox}`)
}

describe('a standby Blender in the sandbox', async () => {
  const found = await findSandbox(await findBlender())
  const skip = typeof found === 'string' ? `no sandbox here: ${found}` : false

  it('sees the submitter\'s files that arrive after it started, and renders them', { skip }, async () => {
    const renderer = new SessionChunkRenderer(blender, { sandbox: found as Sandbox })
    try {
      const folder = await fixtures.tempDir('sandboxed-submitter')
      await renderer.standBy(folder)
      // The job's files come after the sandbox was set up.
      const job = join(folder, 'job1')
      await mkdir(join(job, 'files'), { recursive: true })
      const blendPath = join(job, 'files', 'moving.blend')
      await copyFile(fixtures.blend('moving'), blendPath)
      const results = await renderChunks(renderer, blendPath, job, [[3], [1]])
      assert.ok((await readFile(results[0].logPath, 'utf8')).includes(READY))
      await assertLikePlain(results, blendPath, 'sandboxed')
    } finally {
      await renderer.closeAll()
    }
  })
})
