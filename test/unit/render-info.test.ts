import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { BlendHeader } from '../../src/blendfile/header.js'
import { parseRenderInfo, readRenderInfo } from '../../src/blendfile/render-info.js'
import { SHARED_BLENDS } from '../fixtures/blender-scenes.js'

const skip = existsSync(SHARED_BLENDS) ? false : `the shared .blend files are not at ${SHARED_BLENDS}`

/** A file start in the old layout: a 12-byte header, then blocks. */
function oldLayout (pointerSize: 4 | 8, little: boolean,
  blocks: Array<{ code: string, data: Buffer }>): { header: BlendHeader, content: Uint8Array } {
  const parts: Buffer[] = [Buffer.from(`BLENDER${pointerSize === 8 ? '-' : '_'}${little ? 'v' : 'V'}279`, 'latin1')]
  for (const { code, data } of blocks) {
    const head = Buffer.alloc(pointerSize === 8 ? 24 : 20)
    head.write(code, 0, 'latin1')
    if (little) head.writeInt32LE(data.length, 4)
    else head.writeInt32BE(data.length, 4)
    parts.push(head, data)
  }
  const header: BlendHeader = {
    compression: 'none', pointerSize, endianness: little ? 'little' : 'big',
    version: { major: 2, minor: 79 }, versionString: '2.79'
  }
  return { header, content: Buffer.concat(parts) }
}

function rend (start: number, end: number, name: string, little: boolean): Buffer {
  const data = Buffer.alloc(8 + 64)
  if (little) { data.writeInt32LE(start, 0); data.writeInt32LE(end, 4) } else { data.writeInt32BE(start, 0); data.writeInt32BE(end, 4) }
  data.write(name, 8, 'utf8')
  return data
}

describe('REND blocks: scenes and frame ranges without Blender', () => {
  it('reads the Blender 5.0 layout (17-byte header, 32-byte block headers)', { skip }, async () => {
    assert.deepEqual(await readRenderInfo(join(SHARED_BLENDS, 'renderfarm_test_50.blend')),
      [{ scene: 'Scene ABC', frameStart: 1, frameEnd: 90 }])
  })

  it('reads 3.x files: the active scene comes first', { skip }, async () => {
    assert.deepEqual(await readRenderInfo(join(SHARED_BLENDS, 'armory_logic_scenes.blend')),
      [{ scene: 'Scene1', frameStart: 1, frameEnd: 250 }])
  })

  for (const [pointerSize, little] of [[4, true], [8, true], [4, false], [8, false]] as const) {
    it(`reads ${pointerSize}-byte pointers, ${little ? 'little' : 'big'} endian, and stops at the first other block`, () => {
      const { header, content } = oldLayout(pointerSize, little, [
        { code: 'REND', data: rend(-10, 20, 'Négative', little) },
        { code: 'REND', data: rend(1, 1, 'Set', little) },
        { code: 'TEST', data: Buffer.alloc(16) },
        { code: 'REND', data: rend(5, 6, 'not a render info', little) }
      ])
      assert.deepEqual(parseRenderInfo(header, content), [
        { scene: 'Négative', frameStart: -10, frameEnd: 20 },
        { scene: 'Set', frameStart: 1, frameEnd: 1 }
      ])
    })
  }

  it('gives nothing for a cut or lying block rather than reading past the end', () => {
    const { header, content } = oldLayout(8, true, [{ code: 'REND', data: rend(1, 2, 'A', true) }])
    assert.deepEqual(parseRenderInfo(header, content.subarray(0, content.length - 10)), [])
    const lying = Buffer.from(content)
    lying.writeInt32LE(1 << 30, 12 + 4)
    assert.deepEqual(parseRenderInfo(header, lying), [])
    const negative = Buffer.from(content)
    negative.writeInt32LE(-5, 12 + 4)
    assert.deepEqual(parseRenderInfo(header, negative), [])
  })
})
