/**
 * The output folder when two copies of one frame arrive at once, as a
 * speculative copy and its holder can send them: both are checked, one
 * is written and journaled, the other is a duplicate.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, readFile, rm } from 'node:fs/promises'
import { describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { Journal, journalPath } from '../../src/coordinator/journal.js'
import { OutputFolder } from '../../src/coordinator/output.js'
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
})
