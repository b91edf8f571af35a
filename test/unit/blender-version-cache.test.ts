import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { rememberedVersion, versionCacheFile } from '../../src/blender/version-cache.js'

describe('remembered Blender versions', () => {
  let dir: string
  let file: string
  let runs: number
  const run = async (): Promise<string> => { runs++; return `Blender 3.4.${runs}` }
  const keep = (output: string): boolean => output.startsWith('Blender ')

  /** A file that looks like a compiled program: ELF magic, executable. */
  async function program (name: string): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(60)]))
    await chmod(path, 0o755)
    return path
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'blendnet-version-cache-'))
    await chmod(dir, 0o700)
    file = join(dir, 'cache', 'blender-versions.json')
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('runs a program once, then answers for it while it is unchanged', async () => {
    runs = 0
    const blender = await program('blender-a')
    assert.equal(await rememberedVersion(blender, run, keep, file), 'Blender 3.4.1')
    assert.equal(await rememberedVersion(blender, run, keep, file), 'Blender 3.4.1')
    assert.equal(runs, 1)
    assert.ok((await readFile(file, 'utf8')).includes(blender))
    // An upgrade in place changes its times.
    await utimes(blender, new Date(), new Date(Date.now() + 5000))
    assert.equal(await rememberedVersion(blender, run, keep, file), 'Blender 3.4.2')
    assert.equal(runs, 2)
  })

  it('always runs a script, and never keeps what `keep` refuses', async () => {
    runs = 0
    const script = join(dir, 'blender-script')
    await writeFile(script, '#!/bin/sh\necho Blender 9.9\n', { mode: 0o755 })
    await rememberedVersion(script, run, keep, file)
    await rememberedVersion(script, run, keep, file)
    assert.equal(runs, 2)
    const odd = await program('not-blender')
    await rememberedVersion(odd, run, () => false, file)
    await rememberedVersion(odd, run, () => false, file)
    assert.equal(runs, 4)
  })

  it('ignores a cache file that others may write', async () => {
    runs = 0
    const blender = await program('blender-b')
    await rememberedVersion(blender, run, keep, file)
    await chmod(file, 0o666)
    await rememberedVersion(blender, run, keep, file)
    assert.equal(runs, 2)
  })

  it('lives in the user\'s cache folder', () => {
    assert.equal(versionCacheFile({ XDG_CACHE_HOME: '/c' }), '/c/blendnet/blender-versions.json')
    assert.match(versionCacheFile({ XDG_CACHE_HOME: 'relative' }), /\/\.cache\/blendnet\/blender-versions\.json$/)
  })
})
