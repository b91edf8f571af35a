import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  BACKGROUND_FLAGS, renderChunkArgv, sceneInfoArgv
} from '../../src/blender/argv.js'

const ODD_DIR = '/tmp/Projekt Ärger 日本/chunk #1 & co'
const ODD_BLEND = '/tmp/Projekt Ärger 日本/scène #1 & co.blend'

function chunkArgv (over: Partial<Parameters<typeof renderChunkArgv>[0]> = {}):
string[] {
  return renderChunkArgv({
    blendPath: '/jobs/shot.blend',
    chunkDir: '/farm/chunk-3',
    scene: 'night',
    frames: [3, 4, 5],
    format: 'PNG',
    ...over
  })
}

describe('Blender command line for a chunk', () => {
  it('opens the .blend right after the background flags (B07)', () => {
    const argv = chunkArgv()
    assert.deepEqual(argv.slice(0, 4), [...BACKGROUND_FLAGS, '/jobs/shot.blend'])
    assert.deepEqual(BACKGROUND_FLAGS,
      ['-b', '--factory-startup', '--disable-autoexec'])
  })

  it('sets scene, output, format and extension after the file and ' +
    'before the render script (B01)', () => {
    const argv = chunkArgv()
    const after = (flag: string): string => argv[argv.indexOf(flag) + 1]
    const script = argv.indexOf('--python')
    for (const flag of ['-S', '-o', '-F', '-x']) {
      assert.ok(argv.indexOf(flag) > argv.indexOf('/jobs/shot.blend'), flag)
      assert.ok(argv.indexOf(flag) < script, flag)
    }
    assert.equal(after('-S'), 'night')
    assert.equal(after('-o'), '/farm/chunk-3/frame_####')
    assert.equal(after('-F'), 'PNG')
    assert.equal(after('-x'), '1')
  })

  it('puts --python-exit-code 1 before --python (B04)', () => {
    const argv = chunkArgv()
    const exitCode = argv.indexOf('--python-exit-code')
    assert.ok(exitCode >= 0 && exitCode < argv.indexOf('--python'))
    assert.equal(argv[exitCode + 1], '1')
    assert.match(argv[argv.indexOf('--python') + 1],
      /scripts\/blender\/render_chunk\.py$/)
  })

  it('never asks for frames with -f, -s, -e or -a (B02, B13)', () => {
    const argv = chunkArgv({ frames: [-5, -4, -1] })
    for (const flag of ['-f', '-s', '-e', '-a', '-j']) {
      assert.ok(!argv.includes(flag), flag)
    }
  })

  it('hands the plan to the script as one JSON argument after --', () => {
    const argv = chunkArgv({ frames: [-5, 0, 7], resolutionPercentage: 25 })
    assert.equal(argv.at(-2), '--')
    assert.deepEqual(JSON.parse(argv.at(-1) as string),
      { scene: 'night', frames: [-5, 0, 7], resolutionPercentage: 25 })
  })

  it('passes odd paths as single untouched arguments (B21)', () => {
    const argv = chunkArgv({ blendPath: ODD_BLEND, chunkDir: ODD_DIR,
      scene: 'scène & "co"' })
    assert.ok(argv.includes(ODD_BLEND))
    assert.ok(argv.includes(`${ODD_DIR}/frame_####`))
    assert.ok(argv.includes('scène & "co"'))
  })
})

describe('Blender command line for reading scenes', () => {
  it('opens the file first and runs the script behind ' +
    '--python-exit-code', () => {
    const argv = sceneInfoArgv('/jobs/shot.blend')
    assert.deepEqual(argv.slice(0, 4), [...BACKGROUND_FLAGS, '/jobs/shot.blend'])
    assert.deepEqual(argv.slice(4, 7), ['--python-exit-code', '1', '--python'])
    assert.match(argv[7], /scripts\/blender\/scene_info\.py$/)
  })
})
