/**
 * Where Blender's Python keeps its bytecode outside the sandbox, and the
 * environment that points it there (src/blender/bytecode.ts).
 */
import assert from 'node:assert/strict'
import { chmod, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { bytecodeEnv, makeBytecodeCache } from '../../src/blender/bytecode.js'
import { tempDir } from '../helpers/swarm.js'

describe('Blender\'s bytecode cache', () => {
  let dir: string

  before(async () => { dir = await tempDir('blendnet-bytecode-') })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('lives under XDG_CACHE_HOME, made on first use, for this user only', async () => {
    const made = makeBytecodeCache({ XDG_CACHE_HOME: dir })
    assert.equal(made, join(dir, 'blendnet', 'blender-bytecode'))
    assert.equal((await stat(made)).mode & 0o777, 0o700)
    // Again: already there.
    assert.equal(makeBytecodeCache({ XDG_CACHE_HOME: dir }), made)
  })

  it('is none where the folder cannot be made, and Blender compiles as before', async () => {
    // A file where the folder would go: refused to root as well.
    const blocked = join(dir, 'blocked')
    await mkdir(blocked)
    await writeFile(join(blocked, 'blendnet'), 'a file')
    assert.equal(makeBytecodeCache({ XDG_CACHE_HOME: blocked }), undefined)
    assert.deepEqual(bytecodeEnv(undefined), {})
  })

  it('is none where the folder exists but others may write into it', async () => {
    const shared = join(dir, 'shared')
    await mkdir(join(shared, 'blendnet', 'blender-bytecode'), { recursive: true })
    await chmod(join(shared, 'blendnet', 'blender-bytecode'), 0o777)
    assert.equal(makeBytecodeCache({ XDG_CACHE_HOME: shared }), undefined)
    await chmod(join(shared, 'blendnet', 'blender-bytecode'), 0o700)
    assert.equal(makeBytecodeCache({ XDG_CACHE_HOME: shared }), join(shared, 'blendnet', 'blender-bytecode'))
  })

  it('points Blender\'s Python at it, writing even where the user said not to', () => {
    const env = bytecodeEnv('/cache/bytecode')
    assert.equal(env.PYTHONPYCACHEPREFIX, '/cache/bytecode')
    // Present and undefined: execa's merge with process.env drops it.
    assert.ok('PYTHONDONTWRITEBYTECODE' in env)
    assert.equal(env.PYTHONDONTWRITEBYTECODE, undefined)
  })
})
