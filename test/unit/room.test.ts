import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { capabilitiesWithRoom } from '../../src/worker/room.js'
import { cpuWorker } from '../helpers/capabilities.js'

describe('a worker\'s room for job files', () => {
  it('is its free disk less a margin, or its --max-job-size when smaller', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'blendnet-room-'))
    try {
      const free = await capabilitiesWithRoom(cpuWorker(), dir)
      assert.ok((free.maxJobBytes ?? 0) > 0)
      const capped = await capabilitiesWithRoom(cpuWorker(), dir, { maxJobBytes: 1000 })
      assert.equal(capped.maxJobBytes, 1000)
    } finally {
      await rm(dir, { recursive: true })
    }
  })
})
