/**
 * The coordinator can die and the job survives: running the same submit
 * again renders only the frames not already in --output and vouched for
 * by its journal. A fake Blender logs every frame it renders, with the
 * chunk dir that names the coordinator it rendered for, so each run's
 * renders can be counted.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { journalPath, type JournalRecord } from '../../src/coordinator/journal.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { frameFileName } from '../../src/job/naming.js'
import { CLI, runCli, startCliWorker, stopWorkers, TEST_ENV, type RunningWorker } from '../helpers/cli.js'
import { tempDir } from '../helpers/swarm.js'

const FRAMES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
const SIDE = 8

describe('resume: the same submit continues the job', { timeout: 300_000 }, () => {
  let dir: string
  let scene: string
  let countLog: string
  let worker: RunningWorker

  before(async () => {
    dir = await tempDir('blendnet-resume-')
    scene = join(dir, 'scene.blend')
    countLog = join(dir, 'rendered.log')
    await makeDemoScene(await findBlender(), scene, { frames: 12, width: SIDE, height: SIDE })
    worker = await startCliWorker(join(dir, 'worker'), [],
      // The fake counts renders in a file of the test's: no sandbox.
      ['--blender', packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts'), '--sandbox', 'none'],
      { FAKE_BLENDER_COUNT_LOG: countLog, FAKE_BLENDER_FRAME_SIZE: String(SIDE), FAKE_BLENDER_FRAME_SECONDS: '0.15' })
  })

  after(async () => {
    await stopWorkers([worker])
    await rm(dir, { recursive: true, force: true })
  })

  // Each run under its own peer ID, so the fake's log (which names the
  // coordinator in each chunk dir) tells the runs apart.
  let runs = 0
  const submitArgs = (output: string, chunkSize: number): string[] =>
    ['submit', scene, '--frames', '1-12', '--chunk-size', String(chunkSize),
      '--output', output, '--bootstrap', worker.addr, '--key', join(dir, `submit-${++runs}.key`)]

  /** The frames the fake rendered for the coordinator that printed `stdout`. */
  async function renderedFor (stdout: string): Promise<number[]> {
    const peer = /^coordinator (\S+) listening/m.exec(stdout)?.[1]
    assert.ok(peer !== undefined, `no coordinator line in:\n${stdout}`)
    const lines = (await readFile(countLog, 'utf8')).split('\n')
    return lines.filter(l => l.includes(`/${peer}/`)).map(l => Number(l.split(' ')[0])).sort((a, b) => a - b)
  }

  /** The frames whose file matches their last journal record. */
  async function journaled (output: string): Promise<number[]> {
    const text = await readFile(journalPath(output), 'utf8').catch(() => '')
    const last = new Map<number, JournalRecord>()
    for (const line of text.split('\n')) {
      try { const r = JSON.parse(line) as JournalRecord; last.set(r.frame, r) } catch {}
    }
    const good: number[] = []
    for (const [frame, record] of last) {
      const bytes = await readFile(join(output, record.file)).catch(() => Buffer.alloc(0))
      const sha = createHash('sha256').update(bytes).digest('hex')
      if (bytes.byteLength === record.size && sha === record.sha256) good.push(frame)
    }
    return good.sort((a, b) => a - b)
  }

  async function assertAllFramesOnce (output: string): Promise<void> {
    const frames = (await readdir(output)).filter(n => n.startsWith('frame_')).sort()
    assert.deepEqual(frames, FRAMES.map(f => frameFileName(f, 'PNG')))
    assert.deepEqual(await journaled(output), FRAMES)
  }

  it('renders again exactly the frames deleted, emptied or changed since, and nothing when all are there', async () => {
    const output = join(dir, 'renders')
    // A file of the artist's where frame 3 goes: replaced, and said so.
    await mkdir(output)
    await writeFile(join(output, 'frame_0003.png'), 'an older render')
    const first = await runCli(submitArgs(output, 3))
    assert.equal(first.exitCode, 0, `${first.stdout}\n${first.stderr}`)
    assert.doesNotMatch(first.stdout as string, /resuming/)
    assert.match(first.stdout as string, /^note: 1 file in --output "\S+renders" not made by this render will be replaced \(frame 3\)$/m)
    assert.deepEqual(await renderedFor(first.stdout as string), FRAMES)
    await assertAllFramesOnce(output)

    await rm(join(output, 'frame_0002.png'))
    await rm(join(output, 'frame_0007.png'))
    await truncate(join(output, 'frame_0005.png'), 0)
    await writeFile(join(output, 'frame_0010.png'), await readFile(join(output, 'frame_0011.png')))

    const second = await runCli(submitArgs(output, 3))
    const out = second.stdout as string
    assert.equal(second.exitCode, 0, `${out}\n${second.stderr}`)
    assert.match(out, /^resuming: 8 of 12 frames already in \S+renders \(checked against \S+renders\/\.blendnet\/journal\.jsonl\); 4 to render \(frames 2,5,7,10 missing, empty or changed since\)$/m)
    assert.deepEqual(await renderedFor(out), [2, 5, 7, 10])
    assert.match(out, /done: 12 frames in .*: 4 rendered now, 8 already there/)
    await assertAllFramesOnce(output)

    // Another chunk size is the same render: nothing to do, no node started.
    const before = await readFile(countLog, 'utf8')
    const third = await runCli(submitArgs(output, 5))
    assert.equal(third.exitCode, 0, `${third.stdout}\n${third.stderr}`)
    assert.match(third.stdout as string, /resuming: 12 of 12 frames already in .*; nothing to render/)
    assert.match(third.stdout as string, /done: 12 frames in .*, all already there/)
    assert.doesNotMatch(third.stdout as string, /^coordinator /m)
    assert.equal(await readFile(countLog, 'utf8'), before)
  })

  it('a submit killed with SIGKILL mid-job, run again, renders only the frames not yet journaled', async () => {
    const output = join(dir, 'killed')
    const proc = execa(process.execPath, [CLI, ...submitArgs(output, 2)],
      { reject: false, all: true, env: TEST_ENV })
    let seen = ''
    await new Promise<void>((resolve, reject) => {
      proc.stdout?.on('data', (d: Buffer) => {
        seen += d.toString()
        if (/frame \d+ done \([4-9]\/12\)/.test(seen)) resolve()
      })
      void proc.then(() => { reject(new Error(`submit ended before it was killed:\n${seen}`)) })
    })
    proc.kill('SIGKILL')
    await proc
    const kept = await journaled(output)
    assert.ok(kept.length >= 4 && kept.length < 12, `journaled at the kill: ${kept.join(',')}`)

    const rerun = await runCli(submitArgs(output, 2))
    const out = rerun.stdout as string
    assert.equal(rerun.exitCode, 0, `${out}\n${rerun.stderr}`)
    assert.match(out, new RegExp(`resuming: ${kept.length} of 12 frames already in`))
    assert.deepEqual(await renderedFor(out), FRAMES.filter(f => !kept.includes(f)))
    await assertAllFramesOnce(output)
    assert.deepEqual((await readdir(output)).filter(n => n.endsWith('.part')), [], 'temp files of the killed run are gone')
  })

  it('frames removed or written over while the job runs are not counted done; a removed journal is written anew; the rerun renders them', async () => {
    const output = join(dir, 'cleaned')
    const proc = execa(process.execPath, [CLI, ...submitArgs(output, 3)],
      { reject: false, all: true, env: TEST_ENV })
    let seen = ''
    let meddled: Promise<void> | undefined
    let [removed, overwritten] = [0, 0]
    proc.stdout?.on('data', (d: Buffer) => {
      seen += d.toString()
      // The first two frames delivered, while at least 6 are still to come.
      const done = [...seen.matchAll(/^frame (\d+) done \((\d+)\/12\)/gm)]
      if (meddled === undefined && done.length >= 2 && Number(done[1][2]) <= 6) {
        [removed, overwritten] = [Number(done[0][1]), Number(done[1][1])]
        meddled = Promise.all([
          rm(join(output, frameFileName(removed, 'PNG'))),
          writeFile(join(output, frameFileName(overwritten, 'PNG')), 'not a frame any more'),
          rm(join(output, '.blendnet'), { recursive: true })
        ]).then(() => {})
      }
    })
    const first = await proc
    assert.ok(meddled !== undefined, `nothing was touched mid-job:\n${seen}`)
    await meddled
    const out = first.stdout as string
    assert.equal(first.exitCode, 1, `${out}\n${first.stderr}`)
    assert.match(out, /^job failed: 2 of 12 frames not rendered \(10 done, in /m)
    assert.match(out, new RegExp(`^ {2}frame ${removed}: removed from the output folder while the job ran$`, 'm'))
    assert.match(out, new RegExp(`^ {2}frame ${overwritten}: written over in the output folder while the job ran$`, 'm'))
    // Frames journaled before the journal went are in the new one too.
    assert.deepEqual(await journaled(output), FRAMES.filter(f => f !== removed && f !== overwritten))

    const rerun = await runCli(submitArgs(output, 3))
    assert.equal(rerun.exitCode, 0, `${rerun.stdout}\n${rerun.stderr}`)
    assert.deepEqual(await renderedFor(rerun.stdout as string), [removed, overwritten].sort((a, b) => a - b))
    await assertAllFramesOnce(output)
  })

  it('a journal that cannot be written stops submit with the reason; once fixed, the same command completes', async () => {
    const output = join(dir, 'unwritable')
    await mkdir(join(output, '.blendnet'), { recursive: true })
    // A journal that leads where no file can be made fails every append,
    // like a full disk, and only once the first frame is in.
    await symlink(join(dir, 'no-such-folder', 'journal.jsonl'), join(output, '.blendnet', 'journal.jsonl'))
    const stopped = await runCli(submitArgs(output, 3), 120_000)
    assert.equal(stopped.exitCode, 1, `${stopped.stdout}\n${stopped.stderr}`)
    assert.match(stopped.stdout as string, /frames? [\d,-]+: cannot write the journal \S+journal\.jsonl: ENOENT/)
    assert.match(stopped.stdout as string, /run the same command again/)

    await rm(join(output, '.blendnet', 'journal.jsonl'))
    const rerun = await runCli(submitArgs(output, 3))
    assert.equal(rerun.exitCode, 0, `${rerun.stdout}\n${rerun.stderr}`)
    // A frame renamed into place but never journaled is rendered again.
    assert.deepEqual(await renderedFor(rerun.stdout as string), FRAMES)
    await assertAllFramesOnce(output)
  })
})
