import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { ChunkFile } from '../../src/blender/chunk-files.js'
import { BlenderLog } from '../../src/blender/chunk-log.js'
import {
  judgeChunk, type ChunkExpectation, type ProcessOutcome
} from '../../src/blender/chunk-verdict.js'
import { frameFileName } from '../../src/job/naming.js'

const DIR = '/farm/chunk'
const EXPECT: ChunkExpectation = {
  blendPath: '/jobs/shot.blend', chunkDir: DIR, frames: [3, 4, 5],
  format: 'PNG'
}
const EXITED_0: ProcessOutcome = {
  exitCode: 0, signal: undefined, timedOut: false, cancelled: false,
  hung: false, timeoutMs: undefined, hangTimeoutMs: undefined
}

const saved = (frame: number, dir = DIR): string =>
  `Saved: '${dir}/${frameFileName(frame, 'PNG')}'`
const marker = (json: object): string =>
  `blendnet-chunk: ${JSON.stringify(json)}`
const DONE = marker({ event: 'chunk-done', frames: 3 })

function logOf (lines: string[]): BlenderLog {
  const log = new BlenderLog()
  for (const line of lines) log.add(line)
  return log
}

/** What a good run of frames 3-5 prints. */
function goodLines (frames = [3, 4, 5]): string[] {
  return ['Blender 3.4.1', 'Read blend: /jobs/shot.blend',
    ...frames.map(f => saved(f)), DONE, '', 'Blender quit']
}

function filesOf (frames = [3, 4, 5]): ChunkFile[] {
  return frames.map(f => ({ name: frameFileName(f, 'PNG'), size: 900,
    isFile: true, hasImageSignature: true }))
}

function verdict (
  lines: string[], files = filesOf(), outcome = EXITED_0
): string | undefined {
  return judgeChunk(EXPECT, outcome, logOf(lines), files)
}

describe('judging a chunk', () => {
  it('accepts exactly the planned frames, saved once, on disk', () => {
    assert.equal(verdict(goodLines()), undefined)
  })

  it('fails extra, missing and repeated frames (B02)', () => {
    assert.match(verdict(goodLines([3, 4, 5, 6])) ?? '',
      /frame_0006.*not a planned/)
    assert.match(verdict(goodLines([3, 5])) ?? '', /never saved frames 4/)
    assert.match(verdict(goodLines([3, 3, 4, 5])) ?? '', /more than once: 3/)
  })

  it('fails a run that saved nothing yet exited 0 (B03)', () => {
    assert.match(verdict(goodLines([]), []) ?? '', /never saved frames 3, 4, 5/)
  })

  it('fails an Error: Python line even after exit 0 (B04)', () => {
    const lines = goodLines()
    lines.splice(2, 0, 'Error: Python: Traceback (most recent call last):',
      '  File "<string>", line 1', "NameError: name 'k' is not defined")
    assert.equal(verdict(lines), "NameError: name 'k' is not defined")
  })

  it('fails a saved path outside the chunk dir (B01)', () => {
    const lines = goodLines()
    lines[2] = saved(3, '/jobs/elsewhere')
    assert.match(verdict(lines) ?? '', /outside the chunk directory/)
  })

  it('fails anything saved before Read blend, or another file read (B07)',
    () => {
      const early = [saved(3), ...goodLines([4, 5])]
      assert.match(verdict(early) ?? '', /before reading the \.blend/)
      const other = goodLines().map(l =>
        l.startsWith('Read blend') ? 'Read blend: /jobs/other.blend' : l)
      assert.match(verdict(other) ?? '', /read "\/jobs\/other\.blend"/)
      const none = goodLines().filter(l => !l.startsWith('Read blend'))
      assert.match(verdict(none) ?? '', /before reading|never reported/)
    })

  it("fails when Blender can't find the scene but renders anyway (B14)",
    () => {
      const lines = goodLines()
      lines.splice(2, 0, "Can't find scene: 'night' in file: '/jobs/x.blend'")
      assert.equal(verdict(lines), "Can't find scene 'night'")
    })

  it('fails an empty, missing, foreign or extra file in the dir (B26, B29)',
    () => {
      const files = filesOf()
      const empty = files.map((f, i) => i === 2 ? { ...f, size: 0 } : f)
      assert.match(verdict(goodLines(), empty) ?? '', /frame_0005.png" is empty/)
      assert.match(verdict(goodLines(), files.slice(0, 2)) ?? '',
        /frame_0005.png" is not on disk/)
      const text = files.map((f, i) =>
        i === 0 ? { ...f, hasImageSignature: false } : f)
      assert.match(verdict(goodLines(), text) ?? '', /is not a PNG image/)
      const stray = [...files, { ...files[0], name: '0001.png' }]
      assert.match(verdict(goodLines(), stray) ?? '', /unexpected "0001.png"/)
    })

  it('fails when the render script never reported the chunk done', () => {
    const lines = goodLines().filter(l => l !== DONE)
    assert.match(verdict(lines) ?? '', /did not report the chunk finished/)
  })

  it("gives Blender's reason over the exit code", () => {
    const lines = ['Read blend: /jobs/shot.blend',
      "Error: Failed to read blend file '/jobs/shot.blend': Missing DNA block",
      '', 'Blender quit']
    assert.equal(verdict(lines, [], { ...EXITED_0, exitCode: 1 }),
      'cannot read the .blend file: Missing DNA block')
    assert.equal(verdict(['Read blend: /jobs/shot.blend', 'something odd'],
      [], { ...EXITED_0, exitCode: 127 }),
    'Blender exited with code 127: something odd')
  })

  it('reports a signal death with the last progress line (B20)', () => {
    const progress = 'Fra:4 Mem:8.49M (Peak 8.56M) | Sample 2/4'
    const reason = verdict(['Read blend: /jobs/shot.blend', saved(3), progress,
      'Malloc returns null: len=3221225472 in mesh, total 2145898'], [],
    { ...EXITED_0, exitCode: undefined, signal: 'SIGABRT' })
    assert.match(reason ?? '', /^Blender died of SIGABRT \(Malloc returns null/)
    assert.match(reason ?? '', /last progress: Fra:4 .*Sample 2\/4$/)
  })

  it('names the likely out-of-memory kill when something else sent SIGKILL', () => {
    const progress = 'Fra:12 Mem:20.1G (Peak 23.9G) | Sample 40/128'
    const reason = verdict(['Read blend: /jobs/shot.blend', progress], [],
      { ...EXITED_0, exitCode: undefined, signal: 'SIGKILL' })
    assert.equal(reason, `Blender died of SIGKILL (most likely out of memory); last progress: ${progress}`)
  })

  it('reports a timeout and a cancel as such', () => {
    const timedOut = { ...EXITED_0, exitCode: undefined, signal: 'SIGTERM',
      timedOut: true, timeoutMs: 1500 }
    assert.match(verdict([], [], timedOut) ?? '',
      /killed after the 1.5 s time limit; no progress was printed/)
    assert.equal(verdict([], [], { ...timedOut, timedOut: false,
      cancelled: true }), 'the render was cancelled')
  })

  it('reports a hang with its silence and the last line printed', () => {
    const hung = { ...EXITED_0, exitCode: undefined, signal: 'SIGTERM',
      hung: true, hangTimeoutMs: 300_000 }
    const progress = 'Fra:4 Mem:8.49M (Peak 8.56M) | Sample 3/16'
    assert.equal(verdict(['Read blend: /jobs/shot.blend', progress, '  ', ''],
      [], hung),
    `Blender hung: no output for 300 s (last line: "${progress}")`)
    assert.equal(verdict([], [], hung),
      'Blender hung: no output for 300 s (it printed nothing)')
  })

  it('names the hang when the time limit strikes as Blender dies', () => {
    const both = { ...EXITED_0, exitCode: undefined, signal: 'SIGKILL',
      hung: true, hangTimeoutMs: 1500, timedOut: true, timeoutMs: 60_000 }
    assert.match(verdict(['Fra:1'], [], both) ?? '',
      /^Blender hung: no output for 1\.5 s \(last line: "Fra:1"\)$/)
  })
})
