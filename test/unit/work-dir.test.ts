import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { WorkDir } from '../../src/worker/work-dir.js'

describe('a worker\'s work dir', () => {
  let root: string
  let workDir: WorkDir

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'blendnet-workdir-'))
    workDir = await WorkDir.open(join(root, 'w'))
  })
  after(async () => {
    await workDir.release()
    await rm(root, { recursive: true, force: true })
  })

  it('removes a finished job, and its coordinator\'s folder once no other job of it is left', async () => {
    await mkdir(workDir.jobDir('peerA', 'job1'), { recursive: true })
    await mkdir(workDir.jobDir('peerA', 'job2'), { recursive: true })
    await mkdir(workDir.jobDir('peerB', 'job3'), { recursive: true })
    const jobs = join(root, 'w', 'jobs')

    await workDir.removeJob('peerA', 'job1')
    assert.deepEqual(await readdir(join(jobs, 'peerA')), ['job2'])
    await workDir.removeJob('peerA', 'job2')
    await workDir.removeJob('peerB', 'job3')
    assert.deepEqual(await readdir(jobs), [])
  })

  it('keeps a submitter\'s folder while a standby Blender\'s folder is in it', async () => {
    await mkdir(workDir.jobDir('peerC', 'job4'), { recursive: true })
    await mkdir(join(workDir.coordinatorDir('peerC'), 'standby-1-1'))
    await workDir.removeJob('peerC', 'job4')
    assert.deepEqual(await readdir(workDir.coordinatorDir('peerC')), ['standby-1-1'])
  })

  it('builds paths from peer and job IDs only', () => {
    assert.equal(workDir.coordinatorDir('peerA'), join(root, 'w', 'jobs', 'peerA'))
    assert.throws(() => workDir.coordinatorDir('..'), /unsafe path part/)
    assert.throws(() => workDir.jobDir('peerA', 'a/b'), /unsafe path part/)
  })
})
