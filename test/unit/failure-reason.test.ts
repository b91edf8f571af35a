/**
 * Why a worker says a chunk failed: Blender's reason as judged, and a
 * file error of the worker's own in words, naming the file.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { failureReason } from '../../src/worker/delivery.js'

describe('failureReason', () => {
  it('names a file error of the worker in words, with the file and the code', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'blendnet-reason-'))
    try {
      await writeFile(join(dir, 'blobs'), 'a file where a folder should be')
      const target = join(dir, 'blobs', 'abc.part')
      const err = await writeFile(target, 'x').then(() => undefined, (e: unknown) => e)
      assert.equal(failureReason(err),
        `the worker could not open its file ${target}: a part of the path is a file, not a folder (ENOTDIR)`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('keeps any other message as it is', () => {
    assert.equal(failureReason(new Error('the coordinator went away')), 'the coordinator went away')
  })
})
