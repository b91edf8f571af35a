import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { renderChunkArgv } from '../../src/blender/argv.js'
import {
  dependencyFiles, JobLayoutError, MissingDependenciesError,
  missingDependencies, missingForRender, pathMapProblem, planJobLayout,
  type Dependency
} from '../../src/blender/dependencies.js'

const BLEND = '/home/ann/shot/scene.blend'
const JOB = '/jobs/3f2a'
const EXT = `${JOB}/blendnet-external`

function dep (over: Partial<Dependency> & Pick<Dependency, 'absolute'>):
Dependency {
  return { kind: 'image', stored: over.absolute, exists: true,
    files: [over.absolute], users: ['Mat'], ...over }
}

const wood = dep({ stored: '//tex/wood.png',
  absolute: '/home/ann/shot/tex/wood.png' })
const marble = dep({ absolute: '/srv/lib/marble.png' })
const glow = dep({ kind: 'image-sequence', absolute: '/srv/seq/g_01.png',
  files: ['/srv/seq/g_01.png', '/srv/seq/g_02.png'] })
const cache = dep({ kind: 'point-cache', stored: '//blendcache_scene/',
  absolute: '/home/ann/shot/blendcache_scene',
  files: ['/home/ann/shot/blendcache_scene/A_000001_00.bphys'] })
const up = dep({ stored: '//../common/sky.hdr',
  absolute: '/home/ann/common/sky.hdr' })

describe('laying a job out in a worker job dir', () => {
  it('keeps the .blend name and what lies beside it in place', () => {
    const layout = planJobLayout(BLEND, [wood, cache], JOB)
    assert.equal(layout.blendPath, `${JOB}/scene.blend`)
    assert.deepEqual(layout.copies, [
      { from: BLEND, to: `${JOB}/scene.blend` },
      { from: wood.absolute, to: `${JOB}/tex/wood.png` },
      { from: cache.files[0],
        to: `${JOB}/blendcache_scene/A_000001_00.bphys` }
    ])
  })

  it('keeps every file inside the job dir, whatever path a peer sends', () => {
    const hostile = ['/' + '../'.repeat(30) + 'tmp/pwned.txt', '/srv/../../../etc/cron.d/x',
      '..\\..\\..\\Windows\\evil.dll', 'C:\\..\\..\\evil.txt', '/a/./b/../../../../c']
    for (const path of hostile) {
      const layout = planJobLayout(BLEND, [dep({ absolute: path })], JOB)
      for (const { to } of layout.copies) {
        assert.ok(to.startsWith(`${JOB}/`) && !to.split('/').includes('..'), `${path} → ${to}`)
      }
    }
    const relativeBlend = planJobLayout('../../../../tmp/evil2.blend', [], JOB)
    assert.ok(relativeBlend.blendPath.startsWith(`${EXT}/`), relativeBlend.blendPath)
  })

  it('mirrors files from elsewhere under their absolute path', () => {
    const layout = planJobLayout(BLEND, [marble, up], JOB)
    assert.deepEqual(layout.copies.slice(1).map(c => c.to),
      [`${EXT}/srv/lib/marble.png`, `${EXT}/home/ann/common/sky.hdr`])
  })

  it('maps the .blend and the folder of each file, sequence or cache',
    () => {
      const { pathMap } = planJobLayout(BLEND, [marble, glow, cache], JOB)
      assert.deepEqual(pathMap, {
        [BLEND]: `${JOB}/scene.blend`,
        '/srv/lib': `${EXT}/srv/lib`,
        '/srv/seq': `${EXT}/srv/seq`,
        '/home/ann/shot/blendcache_scene': `${JOB}/blendcache_scene`
      })
    })

  it('maps a file alone where its folder holds the .blend', () => {
    const above = dep({ absolute: '/home/ann/grain.png' })
    const beside = dep({ absolute: '/home/ann/shot/grain.png' })
    const { pathMap } = planJobLayout(BLEND, [above, beside, up], JOB)
    assert.deepEqual(pathMap, {
      [BLEND]: `${JOB}/scene.blend`,
      '/home/ann/grain.png': `${EXT}/home/ann/grain.png`,
      '/home/ann/shot/grain.png': `${JOB}/grain.png`,
      '/home/ann/common': `${EXT}/home/ann/common`
    })
  })

  it('copies a file two datablocks share once', () => {
    const again = dep({ kind: 'movie', absolute: marble.absolute })
    const layout = planJobLayout(BLEND, [marble, again], JOB)
    assert.equal(layout.copies.length, 2)
  })

  it("mirrors an artist's Windows path without the drive colon", () => {
    const windows = dep({ absolute: 'C:\\Users\\ann\\wood.png' })
    const layout = planJobLayout(BLEND, [windows], JOB)
    assert.equal(layout.copies[1].to, `${EXT}/C/Users/ann/wood.png`)
  })

  it('refuses two files that would land on one place', () => {
    const clash = dep({ absolute: '/home/ann/shot/blendnet-external/srv/' +
      'lib/marble.png' })
    assert.throws(() => planJobLayout(BLEND, [marble, clash], JOB),
      (err: unknown) => err instanceof JobLayoutError &&
        /would both be copied to/.test(err.message))
  })
})

describe('missing dependencies', () => {
  const lost = dep({ absolute: '/gone/lost.png', exists: false })
  const sound = dep({ kind: 'sound', absolute: '/gone/a.wav', exists: false })
  const orphan = dep({ absolute: '/gone/o.png', exists: false, users: [] })

  it('lists every dependency not all there', () => {
    assert.deepEqual(missingDependencies([wood, lost, sound, orphan]),
      [lost, sound, orphan])
  })

  it('fails a render only for files it reads: no sound, no orphan', () => {
    assert.deepEqual(missingForRender([wood, lost, sound, orphan]), [lost])
  })

  it('names the first missing file and counts the others', () => {
    const err = new MissingDependenciesError(BLEND, [lost, orphan])
    assert.equal(err.name, 'MissingDependenciesError')
    assert.equal(err.message, '"scene.blend" needs the image ' +
      '"/gone/lost.png" (used by Mat) and 1 more missing files.')
  })

  it('lists each concrete file once', () => {
    assert.deepEqual(dependencyFiles([glow, marble, glow]),
      ['/srv/lib/marble.png', '/srv/seq/g_01.png', '/srv/seq/g_02.png'])
  })
})

describe('path maps', () => {
  it('accepts absolute artist paths, Windows ones too', () => {
    assert.equal(pathMapProblem({ '/a/x.png': '/job/x.png',
      'C:\\tex\\y.png': '/job/y.png' }), undefined)
  })

  it('refuses relative paths on either side', () => {
    assert.equal(pathMapProblem({ 'tex/x.png': '/job/x.png' }),
      '"tex/x.png" is not an absolute path')
    assert.equal(pathMapProblem({ '/a/x.png': 'job/x.png' }),
      '"job/x.png" (for "/a/x.png") is not absolute')
  })

  it('reaches the render script inside the plan after --', () => {
    const pathMap = { '/srv/lib': '/jobs/1/blendnet-external/srv/lib' }
    const argv = renderChunkArgv({ blendPath: '/jobs/1/scene.blend',
      chunkDir: '/jobs/1/c', scene: 'Scene', frames: [1], format: 'PNG',
      pathMap })
    assert.deepEqual(JSON.parse(argv.at(-1) as string).pathMap, pathMap)
  })
})
