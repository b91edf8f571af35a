/**
 * The output folder when two copies of one frame arrive at once, as a
 * speculative copy and its holder can send them: both are checked, one
 * is written and journaled, the other is a duplicate. And what counts
 * as done at the end when someone removed or wrote over frames.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { appendFile, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { Journal, journalPath } from '../../src/coordinator/journal.js'
import { OutputFolder, outcomeInFolder } from '../../src/coordinator/output.js'
import { pngBytes } from '../helpers/fake-renderers.js'
import { HEIGHT, tempDir, WIDTH } from '../helpers/swarm.js'

/** Just enough of a libp2p stream for receiveFile: message events. */
class BytesArriving extends EventTarget {
  maxReadBufferLength = 0
  pause (): void {}
  resume (): void {}
  deliver (bytes: Uint8Array): void {
    this.dispatchEvent(Object.assign(new Event('message'), { data: bytes }))
  }
}

describe('OutputFolder', () => {
  it('writes and journals a frame once when two good copies arrive together', async () => {
    const dir = await tempDir('blendnet-output-')
    try {
      const journal = new Journal(dir, 'render-key')
      const output = new OutputFolder(dir, { format: 'PNG', width: WIDTH, height: HEIGHT }, journal)
      const png = pngBytes(WIDTH, HEIGHT, 7)
      const sha256 = createHash('sha256').update(png).digest()
      const [a, b] = [new BytesArriving(), new BytesArriving()]
      const results = [
        output.receive(a as unknown as Stream, 60, png.length, sha256),
        output.receive(b as unknown as Stream, 60, png.length, sha256)
      ]
      a.deliver(png)
      b.deliver(png)
      const [first, second] = await Promise.all(results)
      await journal.close()

      assert.deepEqual([first.ok, second.ok].sort(), [false, true], 'one copy written')
      const loser = first.ok ? second : first
      assert.equal(!loser.ok && loser.duplicate, true, 'the other is a duplicate, not a bad frame')
      assert.deepEqual((await readdir(dir)).filter(n => n !== '.blendnet'), ['frame_0060.png'], 'no temp file left')
      const lines = (await readFile(journalPath(dir), 'utf8')).trim().split('\n')
      assert.equal(lines.filter(l => JSON.parse(l).frame === 60).length, 1, 'journaled once')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('at the end counts only frames still there as written; a frame written when the job was stopped counts', async () => {
    const dir = await tempDir('blendnet-output-')
    try {
      const output = new OutputFolder(dir, { format: 'PNG', width: WIDTH, height: HEIGHT })
      const png = pngBytes(WIDTH, HEIGHT, 1)
      const sha256 = createHash('sha256').update(png).digest()
      for (const frame of [3, 4, 5]) {
        const stream = new BytesArriving()
        const written = output.receive(stream as unknown as Stream, frame, png.length, sha256)
        stream.deliver(png)
        assert.equal((await written).ok, true)
      }
      // Frames 1 and 2 were there on resume.
      for (const frame of [1, 2]) await writeFile(output.pathOf(frame), png)
      await output.vouchFor([1, 2])

      await rm(output.pathOf(1))
      await appendFile(output.pathOf(4), 'scribbled over')
      const audit = await output.audit()
      assert.deepEqual([...audit.intact].sort(), [2, 3, 5])
      assert.deepEqual(audit.gone, [1])
      assert.deepEqual(audit.changed, [4])

      // The job was interrupted with frames 5 and 6 counted not done;
      // 5 had been written in that moment.
      const ran = {
        succeeded: false, total: 6, done: 4, alreadyThere: 2, rejected: {},
        failedFrames: [{ frame: 5, reason: 'interrupted' }, { frame: 6, reason: 'interrupted' }]
      }
      const outcome = outcomeInFolder(ran, audit, new Set([1, 2]))
      assert.deepEqual(outcome.failedFrames, [
        { frame: 1, reason: 'removed from the output folder while the job ran' },
        { frame: 4, reason: 'written over in the output folder while the job ran' },
        { frame: 6, reason: 'interrupted' }
      ])
      assert.equal(outcome.succeeded, false)
      assert.equal(outcome.done, 3)
      assert.equal(outcome.alreadyThere, 1)

      const clean = outcomeInFolder({ ...ran, failedFrames: [] }, { intact: new Set([1, 2, 3]), gone: [], changed: [] }, new Set())
      assert.equal(clean.succeeded, true)
      assert.equal(clean.done, 6)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
