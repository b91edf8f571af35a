import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Journal, journalPath } from '../../src/coordinator/journal.js'
import { OutputWriteError } from '../../src/coordinator/output.js'
import { frameFileName } from '../../src/job/naming.js'
import { renderKeyOf, type JobSettings, type JobSpec } from '../../src/job/spec.js'

const KEY = 'render-a'

function sha (bytes: Buffer): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** Writes frame N's file into `dir` and journals it, as OutputFolder does. */
async function landFrame (journal: Journal, frame: number, bytes = Buffer.from(`frame ${frame}`)): Promise<void> {
  const file = frameFileName(frame, 'PNG')
  await writeFile(join(journal.outputDir, file), bytes)
  await journal.append(frame, file, bytes.byteLength, sha(bytes))
}

describe('renderKeyOf', () => {
  const spec: Pick<JobSpec, 'manifest' | 'settings' | 'requirements'> = {
    manifest: { bytes: new Uint8Array(), sha256: new Uint8Array(32) },
    settings: { scene: 'Scene', format: 'PNG', width: 64, height: 36, engine: '', samples: 0, resolutionPercentage: 0, device: '' },
    requirements: { minBlender: '3.4', engine: 'CYCLES', device: 'CPU' }
  }

  it('does not depend on the order of the settings\' keys (chunks and job id are not part of it)', () => {
    const reversed = Object.fromEntries(Object.entries(spec.settings).reverse()) as JobSettings
    const reordered = { ...spec, settings: reversed }
    assert.equal(renderKeyOf(reordered), renderKeyOf(spec))
  })

  it('changes with the scene files, any render setting, or allowed scripts', () => {
    const key = renderKeyOf(spec)
    assert.notEqual(renderKeyOf({ ...spec, manifest: { ...spec.manifest, sha256: new Uint8Array(32).fill(1) } }), key)
    assert.notEqual(renderKeyOf({ ...spec, settings: { ...spec.settings, samples: 16 } }), key)
    assert.notEqual(renderKeyOf({ ...spec, settings: { ...spec.settings, format: 'JPEG' } }), key)
    assert.notEqual(renderKeyOf({ ...spec, requirements: { ...spec.requirements, scripts: true } }), key)
  })
})

describe('journal', () => {
  let root: string
  let n = 0
  const folder = async (): Promise<string> => {
    const dir = join(root, `out-${n++}`)
    await mkdir(dir)
    return dir
  }

  before(async () => { root = await mkdtemp(join(tmpdir(), 'blendnet-journal-')) })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  it('round trip: journaled frames whose files match are done; the folder holds .blendnet/journal.jsonl', async () => {
    const dir = await folder()
    const journal = new Journal(dir, KEY)
    for (const frame of [1, 2, -3]) await landFrame(journal, frame)
    await journal.close()

    const lines = (await readFile(journalPath(dir), 'utf8')).trimEnd().split('\n')
    assert.equal(lines.length, 3)
    const first = JSON.parse(lines[0])
    assert.deepEqual(Object.keys(first), ['v', 'render', 'frame', 'file', 'size', 'sha256', 'at'])
    assert.equal(first.file, 'frame_0001.png')

    const check = await new Journal(dir, KEY).check([-3, 1, 2, 4], 'PNG')
    assert.deepEqual([...check.done].sort((a, b) => a - b), [-3, 1, 2])
    assert.deepEqual(check.changed, [])
  })

  it('no journal yet: nothing is done, and nothing is created by reading', async () => {
    const dir = await folder()
    const check = await new Journal(dir, KEY).check([1, 2], 'PNG')
    assert.equal(check.done.size, 0)
    await assert.rejects(readFile(journalPath(dir)), { code: 'ENOENT' })
  })

  it('a torn last line and malformed lines are skipped; the next append starts on a new line', async () => {
    const dir = await folder()
    const journal = new Journal(dir, KEY)
    await landFrame(journal, 1)
    await landFrame(journal, 2)
    await journal.close()
    const text = await readFile(journalPath(dir), 'utf8')
    // A crash mid-append: frame 2's line cut short, plus junk before it.
    const [line1, line2] = text.trimEnd().split('\n')
    await writeFile(journalPath(dir), `${line1}\nnot json\n{"v":1,"render":"${KEY}","frame":"x"}\n${line2.slice(0, 40)}`)
    const torn = await new Journal(dir, KEY).check([1, 2], 'PNG')
    assert.deepEqual([...torn.done], [1])

    const again = new Journal(dir, KEY)
    await landFrame(again, 3)
    await again.close()
    const after = await new Journal(dir, KEY).check([1, 2, 3], 'PNG')
    assert.deepEqual([...after.done].sort(), [1, 3])
  })

  it('missing, empty, changed or resized files are not done; the last record of a frame wins', async () => {
    const dir = await folder()
    const journal = new Journal(dir, KEY)
    for (const frame of [1, 2, 3, 4, 5, 6]) await landFrame(journal, frame)
    // Frame 6 rendered again later: only its newest record counts.
    await landFrame(journal, 6, Buffer.from('frame 6, second render'))
    await journal.close()

    await rm(join(dir, 'frame_0001.png'))
    await truncate(join(dir, 'frame_0002.png'), 0)
    await writeFile(join(dir, 'frame_0003.png'), 'frame X') // same size, other bytes
    await appendFile(join(dir, 'frame_0004.png'), 'more')
    const check = await new Journal(dir, KEY).check([1, 2, 3, 4, 5, 6], 'PNG')
    assert.deepEqual([...check.done].sort(), [5, 6])
    assert.deepEqual(check.changed.sort(), [1, 2, 3, 4])
  })

  it('records of another render (other settings or scene) are ignored', async () => {
    const dir = await folder()
    const other = new Journal(dir, 'render-b')
    await landFrame(other, 1)
    await other.close()
    const check = await new Journal(dir, KEY).check([1], 'PNG')
    assert.equal(check.done.size, 0)
    assert.deepEqual(check.changed, [])
  })

  it('a frame journaled under another format\'s name is not done', async () => {
    const dir = await folder()
    const journal = new Journal(dir, KEY)
    await landFrame(journal, 1)
    await journal.close()
    const check = await new Journal(dir, KEY).check([1], 'JPEG')
    assert.equal(check.done.size, 0)
  })

  it('a journal removed while the job runs is written anew, with the frames of this render so far', async () => {
    const dir = await folder()
    const earlier = new Journal(dir, KEY)
    await landFrame(earlier, 1)
    await earlier.close()
    let renewed = 0
    const journal = new Journal(dir, KEY, async () => { renewed++ })
    await journal.check([1, 2, 3], 'PNG') // a resumed job reads its earlier lines
    await landFrame(journal, 2)
    assert.equal(renewed, 0)
    await rm(join(dir, '.blendnet'), { recursive: true })
    await landFrame(journal, 3)
    await landFrame(journal, 4)
    await journal.close()
    assert.equal(renewed, 1)

    const frames = (await readFile(journalPath(dir), 'utf8')).trimEnd().split('\n').map(l => JSON.parse(l).frame)
    assert.deepEqual(frames, [1, 2, 3, 4])
    const check = await new Journal(dir, KEY).check([1, 2, 3, 4], 'PNG')
    assert.deepEqual([...check.done].sort((a, b) => a - b), [1, 2, 3, 4])
  })

  it('an append that fails (a full disk) raises OutputWriteError, and so does every later one', async () => {
    const dir = await folder()
    await mkdir(join(dir, '.blendnet'))
    await symlink('/dev/full', journalPath(dir))
    const journal = new Journal(dir, KEY)
    await assert.rejects(landFrame(journal, 1), (err: Error) =>
      err instanceof OutputWriteError && /cannot write the journal .*ENOSPC/.test(err.message))
    await assert.rejects(landFrame(journal, 2), OutputWriteError)
    await journal.close()
  })

  it('an output folder where the journal cannot be created raises OutputWriteError', async () => {
    const dir = await folder()
    await writeFile(join(dir, '.blendnet'), 'a file where the folder should be')
    const journal = new Journal(dir, KEY)
    await assert.rejects(landFrame(journal, 1), OutputWriteError)
  })
})
