import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  FrameSpecError, MAX_FRAME, MIN_FRAME, formatFrameList, framesFromScene,
  parseFrameSpec, repeatedFrames, splitIntoChunks
} from '../../src/job/frames.js'

/** The frames a..b with a step, written out the long way. */
function range (a: number, b: number, step = 1): number[] {
  const length = Math.floor((b - a) / step) + 1
  return Array.from({ length }, (_, i) => a + i * step)
}

/** Asserts `fn` throws a FrameSpecError whose message matches `pattern`. */
function assertSpecError (fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FrameSpecError, `not a FrameSpecError: ${err}`)
    assert.match(err.message, pattern)
    return true
  })
}

describe('parseFrameSpec', () => {
  it('reads ranges, single frames and lists', () => {
    assert.deepEqual(parseFrameSpec('0-250'), range(0, 250))
    assert.deepEqual(parseFrameSpec('7'), [7])
    assert.deepEqual(parseFrameSpec('1-10,20,30-40'),
      [...range(1, 10), 20, ...range(30, 40)])
  })

  it('reads negative frames', () => {
    assert.deepEqual(parseFrameSpec('-5--1'), [-5, -4, -3, -2, -1])
    assert.deepEqual(parseFrameSpec('-5-5'), range(-5, 5))
    assert.deepEqual(parseFrameSpec('-10--7,3'), [-10, -9, -8, -7, 3])
    assert.deepEqual(parseFrameSpec('-3'), [-3])
    assert.deepEqual(parseFrameSpec('-0'), [0])
  })

  it('reads a step', () => {
    assert.deepEqual(parseFrameSpec('1-100x5'), range(1, 96, 5))
    assert.deepEqual(parseFrameSpec('-10-10x10'), [-10, 0, 10])
    assert.deepEqual(parseFrameSpec('1-3x7'), [1])
  })

  it('sorts, removes duplicates and allows spaces around commas', () => {
    assert.deepEqual(parseFrameSpec(' 30-32 , 1-3,2-4 ,  3 '),
      [1, 2, 3, 4, 30, 31, 32])
  })

  it('accepts the frame limits and nothing beyond them', () => {
    assert.deepEqual(parseFrameSpec(`${MIN_FRAME},${MAX_FRAME}`),
      [MIN_FRAME, MAX_FRAME])
    assertSpecError(() => parseFrameSpec('1048575'), /frame limits/)
    assertSpecError(() => parseFrameSpec('-1048575-0'), /frame limits/)
    assertSpecError(() => parseFrameSpec('1-'.padEnd(400, '9')),
      /frame limits/)
  })

  it('names the bad part in one sentence', () => {
    assertSpecError(() => parseFrameSpec('10-1'),
      /^frame range "10-1" runs backwards; write it as 1-10$/)
    assertSpecError(() => parseFrameSpec('5--1'), /write it as -1-5/)
    assertSpecError(() => parseFrameSpec(''), /empty/)
    assertSpecError(() => parseFrameSpec('   '), /empty/)
    assertSpecError(() => parseFrameSpec('1,,2'), /an empty part/)
    assertSpecError(() => parseFrameSpec('1-10,abc'), /"abc"/)
    assertSpecError(() => parseFrameSpec('1..10'), /"1..10"/)
    assertSpecError(() => parseFrameSpec('5x2'), /"5x2"/)
    assertSpecError(() => parseFrameSpec('1-10x0'), /step in "1-10x0"/)
    assertSpecError(() => parseFrameSpec('1-10x-2'), /step/)
  })

  it('refuses more than a million frames', () => {
    assertSpecError(() => parseFrameSpec('-1000000-1000000'),
      /more than 1000000 frames/)
    assertSpecError(() => parseFrameSpec('0-600000,-500000--1'),
      /more than 1000000 frames/)
    assert.equal(parseFrameSpec('1-600000,1-600000').length, 600000)
  })
})

describe('repeatedFrames', () => {
  it('names the frames listed more than once, and none in a list without overlaps', () => {
    assert.deepEqual(repeatedFrames(' 30-32 , 1-3,2-4 ,  3 '), [2, 3])
    assert.deepEqual(repeatedFrames('1-10x2,2-10x2'), [])
    assert.deepEqual(repeatedFrames('1-10x2,5'), [5])
  })
})

describe('framesFromScene', () => {
  it('follows the scene range and frame step', () => {
    assert.deepEqual(framesFromScene(1, 10, 1), range(1, 10))
    assert.deepEqual(framesFromScene(-5, 5, 2), [-5, -3, -1, 1, 3, 5])
    assert.deepEqual(framesFromScene(3, 3, 4), [3])
  })

  it('refuses a scene range it cannot render', () => {
    assertSpecError(() => framesFromScene(10, 1, 1), /runs backwards/)
    assertSpecError(() => framesFromScene(1, 10, 0), /step/)
    assertSpecError(() => framesFromScene(1.5, 10, 1), /whole numbers/)
  })
})

describe('formatFrameList', () => {
  it('writes compact runs', () => {
    assert.equal(formatFrameList([...range(1, 10), 20, ...range(30, 40)]),
      '1-10,20,30-40')
    assert.equal(formatFrameList([-5, -4, -3, -2, -1]), '-5--1')
    assert.equal(formatFrameList([3, 1, 2, 2, -1]), '-1,1-3')
    assert.equal(formatFrameList([]), '')
  })
})

describe('splitIntoChunks', () => {
  it('cuts consecutive groups of the sorted frames', () => {
    assert.deepEqual(splitIntoChunks([5, 1, 2, 3, 4], 2),
      [[1, 2], [3, 4], [5]])
    assert.deepEqual(splitIntoChunks([], 3), [])
    assert.throws(() => splitIntoChunks([1], 0), RangeError)
  })
})

describe('frame list properties', () => {
  const frameSet = fc.uniqueArray(
    fc.integer({ min: MIN_FRAME, max: MAX_FRAME }), { maxLength: 60 })
  const clusteredSet = fc.uniqueArray(
    fc.integer({ min: -40, max: 40 }), { minLength: 1, maxLength: 60 })

  it('parse(format(x)) gives x back', () => {
    fc.assert(fc.property(fc.oneof(frameSet, clusteredSet), (frames) => {
      fc.pre(frames.length > 0)
      const sorted = [...frames].sort((a, b) => a - b)
      assert.deepEqual(parseFrameSpec(formatFrameList(frames)), sorted)
    }), { numRuns: 500 })
  })

  it('chunks partition the frames exactly, in order', () => {
    const size = fc.integer({ min: 1, max: 20 })
    fc.assert(fc.property(clusteredSet, size, (frames, chunkSize) => {
      const sorted = [...frames].sort((a, b) => a - b)
      const chunks = splitIntoChunks(frames, chunkSize)

      assert.deepEqual(chunks.flat(), sorted)
      assert.ok(chunks.every(c => c.length >= 1 && c.length <= chunkSize))
      assert.ok(chunks.slice(0, -1).every(c => c.length === chunkSize))
    }), { numRuns: 300 })
  })

  it('parse throws nothing but FrameSpecError on any string', () => {
    const specLike = fc.stringMatching(/^[-0-9x, ]{0,24}$/)
    fc.assert(fc.property(fc.oneof(fc.string(), specLike), (spec) => {
      try {
        const frames = parseFrameSpec(spec)
        assert.ok(frames.length > 0)
      } catch (err) {
        assert.ok(err instanceof FrameSpecError, `${spec}: ${err}`)
      }
    }), { numRuns: 2000 })
  })
})
