import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32, deflateSync, inflateSync } from 'node:zlib'
import fc from 'fast-check'
import {
  comparePngPixels, decodePngPixels, verifyImage, type ImageCheck
} from '../../src/image/verify.js'
import type { ImageFormat } from '../../src/job/naming.js'

/**
 * Renders of the default cube at 64x36 in every format blendnet accepts,
 * plus one at half size. Each entry: file name, format, colour mode,
 * bit depth, codec.
 */
const RENDERS: Array<[string, ImageFormat, string, string, string]> = [
  ['rgb8.png', 'PNG', 'RGB', '8', ''],
  ['rgba8.png', 'PNG', 'RGBA', '8', ''],
  ['rgba16.png', 'PNG', 'RGBA', '16', ''],
  ['frame.jpg', 'JPEG', 'RGB', '8', ''],
  ['deflate.tif', 'TIFF', 'RGB', '8', 'DEFLATE'],
  ['raw16.tif', 'TIFF', 'RGBA', '16', 'NONE'],
  ['zip.exr', 'OPEN_EXR', 'RGBA', '16', 'ZIP'],
  ['piz.exr', 'OPEN_EXR', 'RGB', '32', 'PIZ'],
  ['layers.exr', 'OPEN_EXR_MULTILAYER', 'RGBA', '32', 'ZIP']
]

const RENDER_SCRIPT = `
import bpy, sys, json
out, renders = sys.argv[sys.argv.index("--") + 1:]
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 2
scene.cycles.use_denoising = False
scene.render.film_transparent = True
scene.render.resolution_x, scene.render.resolution_y = 64, 36
settings = scene.render.image_settings
for name, fmt, mode, depth, codec, percent in json.loads(renders):
    scene.render.resolution_percentage = percent
    settings.file_format = fmt
    settings.color_mode = mode
    if fmt != "JPEG":
        settings.color_depth = depth
    if fmt.startswith("OPEN_EXR"):
        settings.exr_codec = codec
    if fmt == "TIFF":
        settings.tiff_codec = codec
    scene.render.filepath = out + "/" + name
    scene.render.use_file_extension = False
    bpy.ops.render.render(write_still=True)
`

const SIZE = { width: 64, height: 36 }
let dir = ''
let rendered: string | true = 'not rendered yet'
const files = new Map<string, Uint8Array>()

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'blendnet-verify-'))
  const jobs = [...RENDERS.map(r => [...r, 100]),
    ['half.png', 'PNG', 'RGB', '8', '', 50]]
  try {
    execFileSync('blender', ['-b', '--factory-startup',
      '--python-exit-code', '1', '--python-expr', RENDER_SCRIPT,
      '--', dir, JSON.stringify(jobs)], { stdio: 'ignore', timeout: 120_000 })
    for (const [name] of jobs) {
      files.set(String(name), await readFile(join(dir, String(name))))
    }
    rendered = true
  } catch (err) {
    rendered = `Blender could not render the test images: ${err}`
  }
})

after(async () => {
  await rm(dir, { recursive: true, force: true })
})

function file (name: string): Uint8Array {
  const bytes = files.get(name)
  assert.ok(bytes !== undefined, `${name} was not rendered`)
  return bytes
}

function assertFails (check: ImageCheck, reason: RegExp): void {
  assert.equal(check.ok, false, 'expected the check to fail')
  if (!check.ok) assert.match(check.reason, reason)
}

/** Rewrites a PNG chunk's CRC after it was changed on purpose. */
function fixCrc (png: Uint8Array, chunk: number): void {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength)
  const end = chunk + 8 + view.getUint32(chunk)
  view.setUint32(end, crc32(png.subarray(chunk + 4, end)))
}

/** The PNG with its one IDAT's inflated scanlines edited and packed again. */
function withImageData (png: Uint8Array, edit: (raw: Buffer) => void): Uint8Array {
  const idat = chunkAt(png, 'IDAT')
  const length = new DataView(png.buffer, png.byteOffset).getUint32(idat)
  const raw = inflateSync(png.subarray(idat + 8, idat + 8 + length))
  edit(raw)
  const data = deflateSync(raw)
  const chunk = Buffer.alloc(12 + data.length)
  chunk.writeUInt32BE(data.length, 0)
  chunk.write('IDAT', 4, 'latin1')
  data.copy(chunk, 8)
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length)
  return Buffer.concat([png.subarray(0, idat), chunk, png.subarray(idat + 12 + length)])
}

function chunkAt (png: Uint8Array, type: string): number {
  return Buffer.from(png).indexOf(type) - 4
}

describe('verifyImage on real Blender renders', () => {
  it('passes every format, depth and codec', (t) => {
    if (rendered !== true) return t.skip(rendered)
    for (const [name, format] of RENDERS) {
      assert.deepEqual(verifyImage(file(name), { format, ...SIZE }),
        { ok: true, ...SIZE }, name)
    }
  })

  it('fails a render of the wrong size, naming both sizes', (t) => {
    if (rendered !== true) return t.skip(rendered)
    assert.deepEqual(verifyImage(file('half.png'), { format: 'PNG', ...SIZE }),
      { ok: false, reason: 'image is 32x18, expected 64x36' })
  })

  it('takes any size when the job\'s size is unknown (0x0), and says which', (t) => {
    if (rendered !== true) return t.skip(rendered)
    assert.deepEqual(verifyImage(file('half.png'), { format: 'PNG', width: 0, height: 0 }),
      { ok: true, width: 32, height: 18 })
    assert.equal(verifyImage(file('half.png').subarray(0, 100), { format: 'PNG', width: 0, height: 0 }).ok, false)
  })

  it('fails every file cut short, at any length', (t) => {
    if (rendered !== true) return t.skip(rendered)
    for (const [name, format] of RENDERS) {
      const bytes = file(name)
      for (let length = 0; length < bytes.length; length++) {
        const check = verifyImage(bytes.subarray(0, length),
          { format, ...SIZE })
        assert.equal(check.ok, false, `${name} cut to ${length} bytes`)
      }
    }
  })

  it('fails a PNG with any bit flipped', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const png = file('rgba16.png')
    for (let i = 0; i < png.length; i++) {
      const copy = Uint8Array.from(png)
      copy[i] ^= 1 << (i % 8)
      assertFails(verifyImage(copy, { format: 'PNG', ...SIZE }), /./)
    }
  })

  it('fails a PNG whose image data is damaged under a good CRC', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const png = file('rgb8.png')
    const idat = chunkAt(png, 'IDAT')
    const length = new DataView(png.buffer, png.byteOffset).getUint32(idat)
    // Deflate has a little slack: a flip may decode to the same pixels,
    // and only then may the image pass.
    for (let i = idat + 8; i < idat + 8 + length; i++) {
      const copy = Uint8Array.from(png)
      copy[i] ^= 1 << (i % 8)
      fixCrc(copy, idat)
      const check = verifyImage(copy, { format: 'PNG', ...SIZE })
      if (check.ok) assert.ok(comparePngPixels(png, copy).same, `byte ${i}`)
    }
    const copy = Uint8Array.from(png)
    copy[idat + 8 + length - 3] ^= 0x10
    fixCrc(copy, idat)
    assertFails(verifyImage(copy, { format: 'PNG', ...SIZE }),
      /^the PNG image data is damaged \(incorrect data check\)$/)
  })

  it('fails a PNG whose scanline filter or header is unknown under good CRCs', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const png = file('rgb8.png')
    const stride = 1 + 3 * SIZE.width
    for (const row of [0, 17, SIZE.height - 1]) {
      const damaged = withImageData(png, (raw) => { raw[row * stride] = 5 })
      assertFails(verifyImage(damaged, { format: 'PNG', ...SIZE }),
        /^the PNG image data is damaged \(unknown scanline filter 5\)$/)
    }
    const fine = withImageData(png, () => {})
    assert.deepEqual(verifyImage(fine, { format: 'PNG', ...SIZE }), { ok: true, ...SIZE })

    const badDepth = Uint8Array.from(png)
    badDepth[24] = 4 // RGB has no 4-bit form
    fixCrc(badDepth, 8)
    assertFails(verifyImage(badDepth, { format: 'PNG', ...SIZE }),
      /^the PNG header names colour type 2 at 4 bits, which PNG does not define$/)
  })

  it('names the format it found when it is not the one asked for', (t) => {
    if (rendered !== true) return t.skip(rendered)
    assertFails(verifyImage(file('frame.jpg'), { format: 'PNG', ...SIZE }),
      /^expected a PNG image, but this is a JPEG image$/)
    assertFails(verifyImage(file('rgb8.png'),
      { format: 'OPEN_EXR', ...SIZE }),
    /^expected an OpenEXR image, but this is a PNG image$/)
  })

  it('fails a JPEG without its end marker', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const jpeg = file('frame.jpg')
    assertFails(verifyImage(jpeg.subarray(0, jpeg.length - 2),
      { format: 'JPEG', ...SIZE }), /no end-of-image marker/)
  })

  it('fails an EXR whose offset table points past the end', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const exr = Uint8Array.from(file('zip.exr'))
    const table = exrTableStart(exr)
    new DataView(exr.buffer).setBigUint64(table + 8, BigInt(exr.length), true)
    assertFails(verifyImage(exr, { format: 'OPEN_EXR', ...SIZE }),
      /OpenEXR chunk 1 lies outside the file/)
  })

  it('reads a multi-part EXR and checks its chunks', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const multipart = toMultipart(file('layers.exr'))
    const format: ImageFormat = 'OPEN_EXR_MULTILAYER'
    assert.deepEqual(verifyImage(multipart, { format, ...SIZE }),
      { ok: true, ...SIZE })
    assertFails(verifyImage(multipart.subarray(0, multipart.length - 1),
      { format, ...SIZE }), /lies outside the file/)
  })
})

describe('verifyImage on made-up files', () => {
  it('fails empty input and unknown data', () => {
    assertFails(verifyImage(new Uint8Array(), { format: 'PNG', ...SIZE }),
      /^the image is empty$/)
    assertFails(verifyImage(Buffer.from('hello'), { format: 'TIFF', ...SIZE }),
      /^expected a TIFF image, but the data starts with 68 65 6c 6c 6f$/)
  })

  it('reads TIFF in both byte orders', () => {
    for (const little of [true, false]) {
      const tiff = grayTiff(64, 36, little)
      assert.deepEqual(verifyImage(tiff, { format: 'TIFF', ...SIZE }),
        { ok: true, ...SIZE })
      assertFails(verifyImage(tiff.subarray(0, tiff.length - 1),
        { format: 'TIFF', ...SIZE }), /TIFF image data ends at byte/)
      assertFails(verifyImage(grayTiff(36, 64, little),
        { format: 'TIFF', ...SIZE }), /^image is 36x64, expected 64x36$/)
    }
  })

  it('never throws, whatever it is given', () => {
    const odd = [null, undefined, 42, 'text', {}] as unknown as Uint8Array[]
    for (const input of odd) {
      assert.equal(verifyImage(input, { format: 'PNG', ...SIZE }).ok, false)
    }
    const format = 'GIF' as ImageFormat
    assertFails(verifyImage(new Uint8Array(8), { format, ...SIZE }),
      /cannot check GIF images/)
  })
})

describe('comparePngPixels', () => {
  it('sees equal pixels under different bytes', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const png = file('rgba16.png')
    const copy = Uint8Array.from(png)
    const text = chunkAt(copy, 'tEXt')
    copy[text + 8] ^= 0x20 // the first letter of a key, e.g. Date → date
    fixCrc(copy, text)
    assert.notDeepEqual(copy, png)
    assert.deepEqual(comparePngPixels(png, copy), { same: true, maxDiff: 0 })
  })

  it('decodes 8 and 16 bit, with and without alpha', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const rgb = decodePngPixels(file('rgb8.png'))
    const rgba16 = decodePngPixels(file('rgba16.png'))
    assert.deepEqual([rgb.depth, rgb.channels, rgb.data.length],
      [8, 3, 64 * 36 * 3])
    assert.deepEqual([rgba16.depth, rgba16.channels, rgba16.data.length],
      [16, 4, 64 * 36 * 4])
    assert.ok(rgba16.data instanceof Uint16Array)
    assert.ok(Math.max(...rgba16.data) > 255, 'samples keep 16 bits')
  })

  it('reports the largest difference and a shape mismatch', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const rgb8 = file('rgb8.png')
    const result = comparePngPixels(rgb8, file('rgba8.png'))
    assert.equal(result.same, false)
    assert.match(result.reason ?? '', /3 channels, 8 bit vs .*4 channels/)
    const damaged = comparePngPixels(rgb8, rgb8.subarray(0, 100))
    assert.deepEqual([damaged.same, damaged.maxDiff], [false, Infinity])
  })
})

describe('verifyImage fuzzing', () => {
  const formats: ImageFormat[] =
    ['PNG', 'JPEG', 'TIFF', 'OPEN_EXR', 'OPEN_EXR_MULTILAYER']
  const MAGICS = [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    [0xff, 0xd8, 0xff], [0x49, 0x49, 0x2a, 0x00], [0x4d, 0x4d, 0x00, 0x2a],
    [0x76, 0x2f, 0x31, 0x01]]

  it('is never ok on random bytes, even behind a real magic', () => {
    const bytes = fc.tuple(fc.constantFrom([], ...MAGICS),
      fc.uint8Array({ maxLength: 4096 }))
      .map(([magic, rest]) => Uint8Array.from([...magic, ...rest]))
    fc.assert(fc.property(bytes, fc.constantFrom(...formats),
      (data, format) => {
        assert.equal(verifyImage(data, { format, ...SIZE }).ok, false)
      }), { numRuns: 2000 })
  })

  it('never throws on mutated renders; a PNG passes only unchanged', (t) => {
    if (rendered !== true) return t.skip(rendered)
    const names = RENDERS.map(([name]) => name)
    const edit = fc.record({
      at: fc.nat(), value: fc.integer({ min: 0, max: 255 })
    })
    fc.assert(fc.property(fc.constantFrom(...names),
      fc.array(edit, { minLength: 1, maxLength: 8 }), fc.nat(),
      (name, edits, cut) => {
        const original = file(name)
        const format = RENDERS.find(([n]) => n === name)?.[1] ?? 'PNG'
        const copy = Uint8Array.from(original)
          .subarray(0, original.length - (cut % 4))
        for (const { at, value } of edits) copy[at % copy.length] = value
        const check = verifyImage(copy, { format, ...SIZE })
        if (check.ok && format === 'PNG') {
          // By bytes: a strict deepEqual also compares Uint8Array to Buffer
          // prototypes, and so failed edits that wrote the byte already there.
          assert.ok(Buffer.from(copy).equals(original), 'a changed PNG passed')
        }
      }), { numRuns: 1500 })
  })
})

/** An uncompressed 8-bit grey TIFF in either byte order. */
function grayTiff (width: number, height: number, little: boolean): Buffer {
  const entries: Array<[number, number, number]> = [
    [256, 3, width], [257, 3, height], [258, 3, 8], [259, 3, 1],
    [262, 3, 1], [273, 4, 0], [277, 3, 1], [278, 3, height],
    [279, 4, width * height]
  ]
  const ifdSize = 2 + 12 * entries.length + 4
  const tiff = Buffer.alloc(8 + ifdSize + width * height, 0x80)
  const u16 = (v: number, at: number): number =>
    little ? tiff.writeUInt16LE(v, at) : tiff.writeUInt16BE(v, at)
  const u32 = (v: number, at: number): number =>
    little ? tiff.writeUInt32LE(v, at) : tiff.writeUInt32BE(v, at)

  tiff.write(little ? 'II' : 'MM', 0, 'latin1')
  u16(42, 2)
  u32(8, 4)
  u16(entries.length, 8)
  entries.forEach(([tag, type, value], i) => {
    const at = 10 + 12 * i
    u16(tag, at)
    u16(type, at + 2)
    u32(1, at + 4)
    const v = tag === 273 ? 8 + ifdSize : value
    type === 3 ? u16(v, at + 8) : u32(v, at + 8)
  })
  u32(0, 8 + ifdSize - 4)
  return tiff
}

interface ExrAttribute { name: string, type: string, value: Buffer }

/** The header attributes of a single-part EXR and where its table starts. */
function exrAttributes (exr: Uint8Array): {
  attributes: ExrAttribute[], table: number
} {
  const bytes = Buffer.from(exr)
  const attributes: ExrAttribute[] = []
  let pos = 8
  const cString = (): string => {
    const end = bytes.indexOf(0, pos)
    const text = bytes.toString('latin1', pos, end)
    pos = end + 1
    return text
  }
  for (let name = cString(); name !== ''; name = cString()) {
    const type = cString()
    const size = bytes.readInt32LE(pos)
    const value = bytes.subarray(pos + 4, pos + 4 + size)
    attributes.push({ name, type, value })
    pos += 4 + size
  }
  return { attributes, table: pos }
}

function exrTableStart (exr: Uint8Array): number {
  return exrAttributes(exr).table
}

/**
 * The same image as a one-part multi-part file: the multipart flag, the
 * name, type and chunkCount attributes, an empty header closing the list,
 * and a part number in front of every chunk.
 */
function toMultipart (exr: Uint8Array): Uint8Array {
  const { attributes, table } = exrAttributes(exr)
  const chunks = Math.ceil(36 / 16) // ZIP: 16 scanlines per chunk
  const attribute = (name: string, type: string, value: Buffer): Buffer => {
    const size = Buffer.alloc(4)
    size.writeInt32LE(value.length)
    return Buffer.concat([Buffer.from(`${name}\0${type}\0`, 'latin1'), size,
      value])
  }
  const count = Buffer.alloc(4)
  count.writeInt32LE(chunks)
  const header = Buffer.concat([
    Buffer.from([0x76, 0x2f, 0x31, 0x01, 0x02, 0x14, 0x00, 0x00]),
    ...attributes.map(a => attribute(a.name, a.type, a.value)),
    attribute('name', 'string', Buffer.from('ViewLayer')),
    attribute('type', 'string', Buffer.from('scanlineimage')),
    attribute('chunkCount', 'int', count),
    Buffer.from([0, 0])
  ])

  const source = Buffer.from(exr)
  const offsets = Buffer.alloc(8 * chunks)
  const bodies: Buffer[] = []
  let at = header.length + offsets.length
  for (let i = 0; i < chunks; i++) {
    const start = Number(source.readBigUInt64LE(table + 8 * i))
    const size = source.readInt32LE(start + 4)
    offsets.writeBigUInt64LE(BigInt(at), 8 * i)
    bodies.push(Buffer.alloc(4), source.subarray(start, start + 8 + size))
    at += 4 + 8 + size
  }
  return Buffer.concat([header, offsets, ...bodies])
}
