/**
 * `--log-file`: log lines are appended to the file, never replacing what
 * is there, and SIGHUP reopens it after a log rotation moved it away.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { useLogFile } from '../../src/cli/log-file.js'
import { UsageError } from '../../src/common/errors.js'
import { logger } from '../../src/common/log.js'

describe('--log-file', () => {
  it('appends, and reopens the file on SIGHUP after it was rotated', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'blendnet-log-'))
    try {
      const path = join(dir, 'worker.log')
      await writeFile(path, 'an earlier run\n')
      assert.equal(useLogFile(path), path)
      const log = logger('test')
      log.info('first line', { job: 'j1', peer: 'p1' })
      await rename(path, `${path}.1`)
      log.info('still to the moved file')
      process.emit('SIGHUP', 'SIGHUP')
      log.warn('after rotation', { chunk: 3 })
      const rotated = (await readFile(`${path}.1`, 'utf8')).split('\n')
      assert.equal(rotated[0], 'an earlier run')
      assert.match(rotated[1], /^\S+Z info  test first line job=j1 peer=p1$/)
      assert.match(rotated[2], /^\S+Z info  test still to the moved file$/)
      assert.match(await readFile(path, 'utf8'), /^\S+Z warn  test after rotation chunk=3\n$/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a log disk that is full sends the lines to stderr instead of stopping the process', (t) => {
    const written: string[] = []
    t.mock.method(process.stderr, 'write', (chunk: string) => { written.push(String(chunk)); return true })
    useLogFile('/dev/full')
    const log = logger('test')
    log.info('one', { job: 'j' })
    log.warn('two')
    t.mock.restoreAll()
    assert.match(written[0], /^blendnet: cannot write log file \/dev\/full \(ENOSPC.*\); logging to stderr until it can\n$/)
    assert.match(written[1], /info  test one job=j\n$/)
    assert.match(written[2], /warn  test two\n$/)
    assert.equal(written.length, 3, 'the reason is said once')
  })

  it('a file that cannot be opened is a usage error naming it', () => {
    assert.throws(() => useLogFile('/nonexistent-dir-blendnet/x.log'), (err: Error) =>
      err instanceof UsageError && /^--log-file "\/nonexistent-dir-blendnet\/x\.log" cannot be opened for appending: no such file or folder \(ENOENT\)$/.test(err.message))
    assert.throws(() => useLogFile(''), UsageError)
  })
})
