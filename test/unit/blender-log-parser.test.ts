import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { BlenderLog } from '../../src/blender/chunk-log.js'
import { LOG_TAIL_LINES } from '../../src/blender/limits.js'
import {
  blenderWords, isReadFailure, parseLogLine
} from '../../src/blender/log-parser.js'

/** Lines exactly as Debian's Blender 3.4.1 printed them. */
const CYCLES_PROGRESS = 'Fra:-5 Mem:9.48M (Peak 9.65M) | Time:00:00.05 | ' +
  'Remaining:00:00.00 | Mem:0.84M, Peak:0.84M | Scene, ViewLayer | Sample 1/4'

describe('parseLogLine', () => {
  it('reads the file Blender loaded, quoted or not', () => {
    assert.deepEqual(parseLogLine('Read blend: /tmp/a b/x.blend'),
      { kind: 'read-blend', path: '/tmp/a b/x.blend' })
    assert.deepEqual(parseLogLine('Read blend: "/tmp/a b/x.blend"'),
      { kind: 'read-blend', path: '/tmp/a b/x.blend' })
  })

  it('reads progress of negative frames', () => {
    assert.deepEqual(parseLogLine(CYCLES_PROGRESS),
      { kind: 'progress', frame: -5 })
  })

  it('reads saved paths of the main output and of File Output nodes', () => {
    assert.deepEqual(parseLogLine("Saved: '/out #1/frame_-0005.png'"),
      { kind: 'saved', path: '/out #1/frame_-0005.png' })
    assert.deepEqual(parseLogLine('Saved: /comp/mask0001.png'),
      { kind: 'saved', path: '/comp/mask0001.png' })
  })

  it('tells Python tracebacks from plain errors', () => {
    assert.deepEqual(
      parseLogLine('Error: Python: Traceback (most recent call last):'),
      { kind: 'traceback' })
    assert.deepEqual(parseLogLine('Traceback (most recent call last):'),
      { kind: 'traceback' })
    assert.deepEqual(parseLogLine('Error: Cannot render, no camera'),
      { kind: 'error', message: 'Cannot render, no camera' })
  })

  it('does not count the leak report at exit as an error', () => {
    assert.equal(parseLogLine('Error: Not freed memory blocks: 2, total ' +
      'unfreed memory 0.000244 MB'), undefined)
  })

  it('recognises failures Blender does not call errors', () => {
    const kinds = [
      "Can't find scene: 'night' in file: '/x.blend'",
      'Warning: File written by newer Blender binary (401.1), expect loss ' +
        'of data!',
      'skipping existing frame "/out/frame_0001.png"',
      'Malloc returns null: len=3221225472 in CDDerivedMesh.c:1234, ' +
        'total 2145898',
      "Error in PyDriver: expression failed: frame * k"
    ].map(line => parseLogLine(line)?.kind)
    assert.deepEqual(kinds, ['scene-missing', 'newer-file',
      'skipped-existing', 'out-of-memory', 'driver-failed'])
  })

  it('reads render_chunk.py markers and ignores broken ones', () => {
    assert.deepEqual(
      parseLogLine('blendnet-chunk: {"event": "frame-done", "frame": -5, ' +
        '"path": "/c/frame_-0005.png"}'),
      { kind: 'marker',
        marker: { event: 'frame-done', frame: -5, path: '/c/frame_-0005.png' } })
    assert.equal(parseLogLine('blendnet-chunk: {"event": '), undefined)
  })

  it('ignores EEVEE EGL noise and Blender quit is just the end', () => {
    assert.equal(parseLogLine('EGL Error (0x3001): EGL_NOT_INITIALIZED: ' +
      'EGL is not initialized'), undefined)
    assert.deepEqual(parseLogLine('Blender quit'), { kind: 'quit' })
  })
})

describe('blenderWords', () => {
  it('keeps only the cause when a file cannot be read', () => {
    const read = [
      "Failed to read blend file '/a/x.blend': Missing DNA block",
      "Failed to read blend file '/a/x.blend', not a blend file",
      "File format is not supported in file '/a/x.blend'",
      "Cannot read file '/a/x.blend': No such file or directory"
    ]
    assert.ok(read.every(isReadFailure))
    assert.deepEqual(read.map(blenderWords), ['Missing DNA block',
      'not a blend file', 'File format is not supported',
      'No such file or directory'])
  })

  it('drops the operator wrapper and quoted paths, keeps other ' +
    'exceptions whole', () => {
    assert.equal(blenderWords('RuntimeError: Error: Cannot render, no camera'),
      'Cannot render, no camera')
    assert.equal(blenderWords("Can't find scene: 'night' in file: '/x.blend'"),
      "Can't find scene: 'night'")
    assert.equal(blenderWords("NameError: name 'k' is not defined"),
      "NameError: name 'k' is not defined")
  })
})

describe('BlenderLog', () => {
  it('takes the exception from the end of a traceback', () => {
    const log = new BlenderLog()
    for (const line of [
      'Error: Cannot render, no camera',
      'Error: Python: Traceback (most recent call last):',
      '  File "/s/render_chunk.py", line 9, in <module>',
      '    bpy.ops.render.render(write_still=True)',
      '          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^',
      'RuntimeError: Error: Cannot render, no camera',
      '',
      "Error: script failed, file: 'render_chunk.py', exiting."
    ]) log.add(line)
    assert.deepEqual(log.exceptions,
      ['RuntimeError: Error: Cannot render, no camera'])
    assert.equal(log.tracebacks, 1)
    assert.equal(log.errors[0], 'Cannot render, no camera')
  })

  it('marks what was saved before any Read blend (B07)', () => {
    const log = new BlenderLog()
    log.add("Saved: '/c/frame_0001.png'")
    log.add('Read blend: /jobs/x.blend')
    log.add("Saved: '/c/frame_0002.png'")
    assert.deepEqual(log.saved.map(s => s.beforeReadBlend), [true, false])
  })

  it('keeps the last progress line and a bounded tail', () => {
    const log = new BlenderLog()
    for (let i = 0; i < LOG_TAIL_LINES * 3; i++) log.add(`line ${i}`)
    log.add(CYCLES_PROGRESS)
    assert.equal(log.logTail.length, LOG_TAIL_LINES)
    assert.equal(log.logTail.at(-1), CYCLES_PROGRESS)
    assert.equal(log.lastProgress, CYCLES_PROGRESS)
  })
})
