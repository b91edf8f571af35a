import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { gzipSync, zstdCompressSync } from 'node:zlib'
import { PNG } from 'pngjs'
import {
  BlendFileError, NotABlendFileError, readBlendHeader,
  type BlendFileErrorKind, type BlendHeader
} from '../../src/blendfile/header.js'
import { packagePath } from '../../src/common/paths.js'

const sharedBlends = packagePath('..', 'shared', 'blends')
const noShared = existsSync(sharedBlends)
  ? false
  : `real .blend files not found at ${sharedBlends}`

let dir = ''
const fixture = (name: string): string => join(dir, name)

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'blendnet-header-'))
})

after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Asserts the header read from `path` has these fields. */
async function assertHeader (
  path: string, expected: Partial<BlendHeader>
): Promise<void> {
  const header = await readBlendHeader(path)
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(header[key as keyof BlendHeader], value, key)
  }
}

/** Asserts reading `path` fails with this kind and a matching message. */
async function assertRefused (
  path: string, kind: BlendFileErrorKind, message: RegExp
): Promise<void> {
  await assert.rejects(readBlendHeader(path), (err: unknown) => {
    assert.ok(err instanceof BlendFileError, `not a BlendFileError: ${err}`)
    assert.equal(err.kind, kind)
    assert.match(err.message, message)
    assert.doesNotMatch(err.message, /\n/)
    return true
  })
}

/** A fake uncompressed file: `header` then enough filler bytes. */
function fakeBlend (header: string): Buffer {
  return Buffer.concat([Buffer.from(header, 'latin1'), Buffer.alloc(200)])
}

describe('readBlendHeader on real files', { skip: noShared }, () => {
  it('reads a 2.82 file', async () => {
    await assertHeader(join(sharedBlends, 'cgru_farm_example.blend'), {
      compression: 'none', pointerSize: 8, endianness: 'little',
      version: { major: 2, minor: 82 }, versionString: '2.82'
    })
  })

  it('reads a gzip-compressed 2.93 file', async () => {
    await assertHeader(join(sharedBlends, 'armory_logic_scenes.blend'), {
      compression: 'gzip', pointerSize: 8, versionString: '2.93'
    })
  })

  it('reads the Blender 5.0 header BLENDER17-01v0500', async () => {
    await assertHeader(join(sharedBlends, 'renderfarm_test_50.blend'), {
      compression: 'none', pointerSize: 8, endianness: 'little',
      version: { major: 5, minor: 0 }, versionString: '5.0'
    })
  })
})

describe('readBlendHeader on files saved by this Blender', () => {
  let saved: string | false = false

  before(() => {
    const script = 'import bpy, sys\n' +
      'out = sys.argv[sys.argv.index("--") + 1]\n' +
      'bpy.ops.wm.save_as_mainfile(filepath=out + "/z.blend", ' +
      'compress=True)\n' +
      'bpy.ops.wm.save_as_mainfile(filepath=out + "/u.blend", ' +
      'compress=False)\n'
    try {
      execFileSync('blender', ['-b', '--factory-startup',
        '--python-exit-code', '1', '--python-expr', script, '--', dir],
      { stdio: 'ignore', timeout: 60_000 })
      saved = 'yes'
    } catch (err) {
      saved = `blender could not save test files: ${err}`
    }
  })

  it('reads a zstd-compressed and an uncompressed file', async (t) => {
    if (saved !== 'yes') return t.skip(String(saved))
    const blender = execFileSync('blender', ['--version']).toString()
    const version = /Blender (\d+\.\d+)/.exec(blender)?.[1]
    await assertHeader(fixture('z.blend'),
      { compression: 'zstd', versionString: version })
    await assertHeader(fixture('u.blend'),
      { compression: 'none', versionString: version })
  })

  it('refuses a file compressed twice', async (t) => {
    if (saved !== 'yes') return t.skip(String(saved))
    const zstd = await readFile(fixture('z.blend'))
    await writeFile(fixture('gz-zstd.blend'), gzipSync(zstd))
    await assertRefused(fixture('gz-zstd.blend'), 'double-compressed',
      /^"[^"]+gz-zstd.blend" is compressed twice \(zstd inside gzip\); /)
  })

  it('refuses a compressed file cut short inside its header', async (t) => {
    if (saved !== 'yes') return t.skip(String(saved))
    const zstd = await readFile(fixture('z.blend'))
    await writeFile(fixture('cut.blend'), zstd.subarray(0, 30))
    await assertRefused(fixture('cut.blend'), 'truncated',
      /zstd-compressed but ends after 0 bytes of content; the file is cut/)
  })
})

describe('readBlendHeader on made-up files', () => {
  it('reads both layouts, byte orders and pointer sizes', async () => {
    const cases: Array<[string, Partial<BlendHeader>]> = [
      ['BLENDER_v279', { pointerSize: 4, versionString: '2.79' }],
      ['BLENDER-V300', { endianness: 'big', versionString: '3.0' }],
      ['BLENDER-v205', { versionString: '2.05' }],
      ['BLENDER17-01v0405', { pointerSize: 8, versionString: '4.5' }],
      ['BLENDER17-01v1203', { version: { major: 12, minor: 3 } }]
    ]
    for (const [text, expected] of cases) {
      await writeFile(fixture('fake.blend'), fakeBlend(text))
      await assertHeader(fixture('fake.blend'), expected)
    }
  })

  it('refuses gzip inside gzip', async () => {
    await writeFile(fixture('gz2.blend'),
      gzipSync(gzipSync(fakeBlend('BLENDER-v304'))))
    await assertRefused(fixture('gz2.blend'), 'double-compressed',
      /compressed twice \(gzip inside gzip\); Blender cannot read it/)
  })

  it('refuses zstd inside zstd', async () => {
    await writeFile(fixture('zs2.blend'),
      zstdCompressSync(zstdCompressSync(fakeBlend('BLENDER-v304'))))
    await assertRefused(fixture('zs2.blend'), 'double-compressed',
      /\(zstd inside zstd\)/)
  })

  it('refuses a PNG renamed .blend, naming its first bytes', async () => {
    const png = PNG.sync.write(new PNG({ width: 2, height: 2 }))
    await writeFile(fixture('picture.blend'), png)
    await assert.rejects(readBlendHeader(fixture('picture.blend')),
      NotABlendFileError)
    await assertRefused(fixture('picture.blend'), 'not-a-blend-file',
      /picture.blend" is not a .blend file \(it starts with 89 50 4e 47/)
  })

  it('refuses compressed content that is not a .blend', async () => {
    await writeFile(fixture('text.blend'), gzipSync('hello world'))
    await assertRefused(fixture('text.blend'), 'not-a-blend-file',
      /inside its gzip layer it starts with 68 65 6c 6c 6f/)
  })

  it('refuses empty and short files', async () => {
    await writeFile(fixture('empty.blend'), '')
    await assertRefused(fixture('empty.blend'), 'empty', /is empty/)
    await writeFile(fixture('short.blend'), 'BLENDER-v3')
    await assertRefused(fixture('short.blend'), 'truncated',
      /ends after 10 bytes; the file is cut short/)
    await writeFile(fixture('gz-empty.blend'), gzipSync(''))
    await assertRefused(fixture('gz-empty.blend'), 'truncated', /0 bytes/)
  })

  it('refuses damaged compressed data', async () => {
    const gz = gzipSync(fakeBlend('BLENDER-v304'))
    gz.fill(0xff, 10, 30)
    await writeFile(fixture('damaged.blend'), gz)
    await assertRefused(fixture('damaged.blend'), 'corrupt',
      /starts like a gzip file but its data is damaged/)
  })

  it('refuses an unknown header after BLENDER', async () => {
    await writeFile(fixture('odd.blend'), fakeBlend('BLENDER!!v304'))
    await assertRefused(fixture('odd.blend'), 'unknown-header',
      /may come from a newer Blender/)
  })

  it('refuses a missing file and a folder', async () => {
    await assertRefused(fixture('nope.blend'), 'missing', /does not exist/)
    await mkdir(fixture('folder.blend'))
    await assertRefused(fixture('folder.blend'), 'directory',
      /is a folder, not a .blend file/)
  })

  it('refuses a file it may not read', async (t) => {
    if (process.getuid?.() === 0) return t.skip('root can read any file')
    await writeFile(fixture('secret.blend'), fakeBlend('BLENDER-v304'),
      { mode: 0o000 })
    await assertRefused(fixture('secret.blend'), 'unreadable',
      /permission denied/)
  })

  it('reads only the start of a compressed file', async () => {
    // 4 MB of noise after the header, then the stream is cut in half:
    // the header is still readable because nothing past it is inflated.
    const content = Buffer.concat([fakeBlend('BLENDER-v304'),
      randomBytes(4 * 1024 * 1024)])
    const gz = gzipSync(content)
    await writeFile(fixture('half.blend'), gz.subarray(0, gz.length / 2))
    await assertHeader(fixture('half.blend'),
      { compression: 'gzip', versionString: '3.4' })
  })
})
