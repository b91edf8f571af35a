import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { appendFile, chmod, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { SwarmNode } from '../../src/net/node.js'
import { JobFileTamperedError, JobFiles, type PreparedJob } from '../../src/worker/job-files.js'
import type { WorkDir } from '../../src/worker/work-dir.js'

describe('JobFiles.verify: a job file changed under the worker', () => {
  let dir: string
  let files: JobFiles
  let job: PreparedJob
  const content = 'BLENDER-v304 scene'

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'blendnet-jobfiles-'))
    const path = join(dir, 'scene.blend')
    await writeFile(path, content)
    // verify() needs neither the network nor the work dir.
    files = new JobFiles({} as SwarmNode, {} as WorkDir)
    job = { blendPath: path, pathMap: {}, placed: [{ path, sha256: createHash('sha256').update(content).digest() }] }
  })

  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('passes files that still hold their hash, also after a touch or chmod', async () => {
    await files.verify(job)
    await utimes(job.blendPath, new Date(0), new Date(0))
    await chmod(job.blendPath, 0o600)
    await files.verify(job)
  })

  it('throws JobFileTamperedError for changed content, and for a file gone', async () => {
    await appendFile(job.blendPath, 'x')
    await assert.rejects(files.verify(job), (err: Error) =>
      err instanceof JobFileTamperedError && /scene\.blend no longer matches its SHA-256/.test(err.message))
    await rm(job.blendPath)
    await assert.rejects(files.verify(job), /scene\.blend is gone/)
  })
})
