/**
 * The transfer benchmark's own code run tiny, so that it cannot rot: an
 * 8 MiB scene to two workers in one child process, and the raw TCP copy,
 * checked for the shape of what it reports. Nothing here asserts a time;
 * the full run is `npm run bench -- transfer`.
 */
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { runTransfer, timeRawCopy, transferTable } from '../../bench/transfer.js'
import { writeRandomFile } from '../helpers/files.js'
import { tempDir } from '../helpers/swarm.js'

const SIZE = 8 * 1024 * 1024

describe('transfer benchmark, tiny run', { timeout: 180_000 }, () => {
  it('every worker gets the scene; bytes and times are reported in a table', async () => {
    const dir = await tempDir('blendnet-bench-transfer-')
    try {
      const scene = join(dir, 'scene.blend')
      await writeRandomFile(scene, SIZE)
      const result = await runTransfer({ sizeBytes: SIZE, workers: 2, hosts: 1 }, dir, scene)
      const rawMs = await timeRawCopy(dir, scene)

      assert.equal(result.workersWithScene, 2)
      assert.equal(result.workers.length, 2)
      // Each worker verified every piece, from the coordinator or the other worker.
      for (const w of result.workers) assert.equal(w.fromCoordinator + w.fromPeers, SIZE)
      assert.ok(result.coordinatorBytes >= SIZE, `the coordinator sent ${result.coordinatorBytes} bytes`)
      for (const value of [result.allHaveSceneMs, rawMs]) assert.ok(Number.isFinite(value) && value > 0)
      const lines = transferTable([result], rawMs, SIZE).split('\n')
      assert.equal(lines.length, 4)
      assert.match(lines[2], /^\| blendnet, 2 workers \| 2\/2 \| [\d.]+ \| [\d.]+ \| /)
      assert.match(lines[3], /^\| raw TCP, one copy \| 1\/1 \| 8\.4 \| 1\.00 \| /)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
