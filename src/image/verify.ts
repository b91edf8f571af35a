/**
 * Is this rendered frame a whole image of the size we asked for? A chunk
 * is done only when every frame passes (case B26: a file that merely
 * exists proves nothing). PNG is decoded in full; the other formats are
 * walked far enough to find the size and to see that every block of
 * image data they point at lies inside the file, which catches the usual
 * failure, a file cut short.
 */
import { crc32, inflateSync } from 'node:zlib'
import { PNG } from 'pngjs'
import type { ImageFormat } from '../job/naming.js'

export type ImageCheck =
  | { ok: true, width: number, height: number }
  | { ok: false, reason: string }

export interface ExpectedImage {
  format: ImageFormat
  width: number
  height: number
}

interface Size { width: number, height: number }

/** Image data that cannot be read; the message says why, in one line. */
export class ImageDecodeError extends Error {
  constructor (message: string, cause?: unknown) {
    super(message, { cause })
    this.name = 'ImageDecodeError'
  }
}

type Family = 'PNG' | 'JPEG' | 'TIFF' | 'OpenEXR'

const FAMILY: Record<ImageFormat, Family> = {
  PNG: 'PNG',
  JPEG: 'JPEG',
  TIFF: 'TIFF',
  OPEN_EXR: 'OpenEXR',
  OPEN_EXR_MULTILAYER: 'OpenEXR'
}

const MAGIC: Record<Family, number[][]> = {
  PNG: [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  JPEG: [[0xff, 0xd8, 0xff]],
  TIFF: [[0x49, 0x49, 0x2a, 0x00], [0x4d, 0x4d, 0x00, 0x2a]],
  OpenEXR: [[0x76, 0x2f, 0x31, 0x01]]
}

const READERS: Record<Family, (bytes: Uint8Array) => Size> = {
  PNG: pngSize,
  JPEG: jpegSize,
  TIFF: tiffSize,
  OpenEXR: exrSize
}

/** Check `bytes` against what was asked for. Never throws. */
export function verifyImage (
  bytes: Uint8Array, expected: ExpectedImage
): ImageCheck {
  let family: Family = 'PNG'
  try {
    family = familyFor(expected.format)
    const size = imageSize(bytes, family)
    if (size.width !== expected.width || size.height !== expected.height) {
      return fail(`image is ${size.width}x${size.height}, ` +
        `expected ${expected.width}x${expected.height}`)
    }
    if (family === 'PNG') decodePngPixels(bytes)
    return { ok: true, ...size }
  } catch (err) {
    return fail(reasonOf(err, family))
  }
}

function familyFor (format: ImageFormat): Family {
  if (!Object.hasOwn(FAMILY, format)) {
    throw new ImageDecodeError(`blendnet cannot check ${format} images`)
  }
  return FAMILY[format]
}

function fail (reason: string): ImageCheck {
  return { ok: false, reason }
}

function reasonOf (err: unknown, family: Family): string {
  if (err instanceof ImageDecodeError) return err.message
  if (err instanceof RangeError) {
    return `the ${family} data ends early; the file is cut short or damaged`
  }
  return `the ${family} data cannot be read (${String(err)})`
}

function imageSize (bytes: Uint8Array, family: Family): Size {
  if (bytes.length === 0) throw new ImageDecodeError('the image is empty')
  const found = familyOf(bytes)
  if (found === family) return READERS[family](bytes)

  if (MAGIC[family].some(m => isCutMagic(bytes, m))) {
    throw new ImageDecodeError(
      `the ${family} is cut short (only ${bytes.length} bytes)`)
  }
  const actual = found === undefined
    ? `the data starts with ${hex(bytes.subarray(0, 8))}`
    : `this is ${withArticle(found)} image`
  throw new ImageDecodeError(
    `expected ${withArticle(family)} image, but ${actual}`)
}

function familyOf (bytes: Uint8Array): Family | undefined {
  const families = Object.keys(MAGIC) as Family[]
  return families.find(f => MAGIC[f].some(m => startsWith(bytes, m)))
}

function startsWith (
  bytes: ArrayLike<number>, prefix: ArrayLike<number>
): boolean {
  for (let i = 0; i < prefix.length; i++) {
    if (bytes[i] !== prefix[i]) return false
  }
  return true
}

function isCutMagic (bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length < magic.length && startsWith(magic, bytes)
}

function withArticle (family: Family): string {
  return family === 'OpenEXR' ? 'an OpenEXR' : `a ${family}`
}

function hex (bytes: Uint8Array): string {
  return [...bytes].map(b => b.toString(16).padStart(2, '0')).join(' ')
}

function viewOf (bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

// PNG ----------------------------------------------------------------------

interface PngLayout {
  width: number
  height: number
  /** Bits per pixel as stored: samples per pixel times bit depth. */
  pixelBits: number
  interlaced: boolean
  imageData: Uint8Array[]
}

/** Samples per pixel of each PNG colour type (grey, RGB, palette...). */
const PNG_SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }

function pngSize (bytes: Uint8Array): Size {
  const { width, height } = readPngChunks(bytes)
  return { width, height }
}

/**
 * Walk the chunks: IHDR first, each inside the file with a good CRC
 * (ancillary text chunks too, which a decoder skips), IEND last.
 */
function readPngChunks (bytes: Uint8Array): PngLayout {
  const view = viewOf(bytes)
  const imageData: Uint8Array[] = []
  let pos = 8
  let type = ''
  while (type !== 'IEND') {
    const end = pos + 12 + view.getUint32(pos)
    type = latin1(bytes.subarray(pos + 4, pos + 8))
    checkPngChunk(bytes, pos, end, type)
    if (type === 'IDAT') imageData.push(bytes.subarray(pos + 8, end - 4))
    pos = end
  }

  const samples = PNG_SAMPLES[bytes[25]] ?? 0
  return {
    width: view.getUint32(16),
    height: view.getUint32(20),
    pixelBits: samples * bytes[24],
    interlaced: bytes[28] === 1,
    imageData
  }
}

function checkPngChunk (
  bytes: Uint8Array, pos: number, end: number, type: string
): void {
  if (end > bytes.length) {
    const where = type.length === 4 ? `in its ${type} chunk` : 'mid-chunk'
    throw new ImageDecodeError(`the PNG is cut short ${where}`)
  }
  const stored = viewOf(bytes).getUint32(end - 4)
  if (crc32(bytes.subarray(pos + 4, end - 4)) !== stored) {
    throw new ImageDecodeError(`the PNG ${type} chunk is damaged`)
  }
  if (pos === 8 && type !== 'IHDR') {
    throw new ImageDecodeError('the PNG does not start with its IHDR')
  }
}

/**
 * Inflate the image data with zlib, which checks the stream's Adler-32
 * (pngjs stops once it has enough bytes and misses damage), and require
 * exactly the bytes the size calls for.
 */
function checkPngImageData (layout: PngLayout): void {
  const expected = rawPngLength(layout)
  let raw: Buffer
  try {
    raw = inflateSync(Buffer.concat(layout.imageData),
      { maxOutputLength: Math.max(expected, 1) })
  } catch (err) {
    throw new ImageDecodeError(
      `the PNG image data is damaged (${errorText(err)})`, err)
  }
  if (raw.length !== expected) {
    throw new ImageDecodeError(`the PNG holds ${raw.length} bytes of ` +
      `image data, not the ${expected} its size calls for`)
  }
}

/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [
  [0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4],
  [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]
]

/** Filtered scanlines: each row is a filter byte and its pixels. */
function rawPngLength (layout: PngLayout): number {
  const rows = (width: number, height: number): number =>
    width <= 0 || height <= 0
      ? 0
      : height * (Math.ceil(width * layout.pixelBits / 8) + 1)
  if (!layout.interlaced) return rows(layout.width, layout.height)

  return ADAM7.reduce((sum, [x, y, dx, dy]) => sum + rows(
    Math.ceil((layout.width - x) / dx),
    Math.ceil((layout.height - y) / dy)), 0)
}

export interface PngPixels {
  width: number
  height: number
  /** 8 or 16: samples are scaled to 8 bits unless the file has 16. */
  depth: 8 | 16
  /** 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA, as stored in the file. */
  channels: 1 | 2 | 3 | 4
  /** Row-major samples, `channels` per pixel. */
  data: Uint8Array | Uint16Array
}

/**
 * Decode a PNG in full, checking every chunk's CRC, the zlib stream and
 * the scanline filters. Throws ImageDecodeError on any damage.
 */
export function decodePngPixels (bytes: Uint8Array): PngPixels {
  imageSize(bytes, 'PNG') // a PNG signature, or it throws
  checkPngImageData(readPngChunks(bytes))
  const depth = bytes[24] === 16 ? 16 : 8
  let png: PNG
  try {
    png = PNG.sync.read(Buffer.from(bytes), { skipRescale: depth === 16 })
  } catch (err) {
    throw new ImageDecodeError(`the PNG data is damaged (${errorText(err)})`,
      err)
  }

  const channels = pngChannels(png)
  const data = pickChannels(png.data, channels)
  return { width: png.width, height: png.height, depth, channels, data }
}

/**
 * pngjs hands out RGBA; keep the channels the file really has. Its result
 * also carries the IHDR flags (`color`, `alpha`, true for tRNS too), which
 * @types/pngjs does not declare.
 */
function pngChannels (png: PNG): 1 | 2 | 3 | 4 {
  const flags = png as unknown as { color: boolean, alpha: boolean }
  if (!flags.color) return flags.alpha ? 2 : 1
  return flags.alpha ? 4 : 3
}

function pickChannels (
  rgba: Uint8Array | Uint16Array, channels: 1 | 2 | 3 | 4
): Uint8Array | Uint16Array {
  const keep = [[0], [0, 3], [0, 1, 2], [0, 1, 2, 3]][channels - 1]
  const out = rgba instanceof Uint16Array
    ? new Uint16Array(rgba.length / 4 * channels)
    : new Uint8Array(rgba.length / 4 * channels)
  for (let px = 0, o = 0; px < rgba.length; px += 4) {
    for (const c of keep) out[o++] = rgba[px + c]
  }
  return out
}

export interface PixelComparison {
  same: boolean
  /** The largest difference of one sample; Infinity when not comparable. */
  maxDiff: number
  reason?: string
}

/** Compare two PNGs by decoded pixel values, not by bytes. */
export function comparePngPixels (
  a: Uint8Array, b: Uint8Array
): PixelComparison {
  let left: PngPixels, right: PngPixels
  try {
    left = decodePngPixels(a)
    right = decodePngPixels(b)
  } catch (err) {
    return { same: false, maxDiff: Infinity, reason: errorText(err) }
  }

  const shape = (p: PngPixels): string =>
    `${p.width}x${p.height}, ${p.channels} channels, ${p.depth} bit`
  if (shape(left) !== shape(right)) {
    const reason = `images differ in shape: ${shape(left)} vs ${shape(right)}`
    return { same: false, maxDiff: Infinity, reason }
  }
  const maxDiff = largestDifference(left.data, right.data)
  return maxDiff === 0 ? { same: true, maxDiff } : { same: false, maxDiff,
    reason: `pixels differ by up to ${maxDiff}` }
}

function largestDifference (
  a: ArrayLike<number>, b: ArrayLike<number>
): number {
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]))
  return max
}

function errorText (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

// JPEG ---------------------------------------------------------------------

/** Frame headers that carry the size: SOF0-3, 5-7, 9-11, 13-15. */
const SOF_MARKERS = new Set([
  0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7,
  0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf
])
const SOS = 0xda
const EOI = 0xd9
/** Encoders may pad after the end-of-image marker; allow a little. */
const EOI_SLACK = 64

/** Walk the marker segments up to the scan, then look for EOI. */
function jpegSize (bytes: Uint8Array): Size {
  const view = viewOf(bytes)
  let size: Size | undefined
  let pos = 2
  for (;;) {
    if (bytes[pos] !== 0xff) {
      throw new ImageDecodeError(`the JPEG has no marker at byte ${pos}`)
    }
    const marker = view.getUint8(pos + 1)
    if (marker === 0xff) { pos += 1; continue } // fill byte
    if (isStandalone(marker)) { pos += 2; continue }
    if (marker === EOI) {
      throw new ImageDecodeError('the JPEG ends before its image data')
    }

    const length = view.getUint16(pos + 2)
    if (SOF_MARKERS.has(marker)) {
      const height = view.getUint16(pos + 5)
      size = { width: view.getUint16(pos + 7), height }
    }
    pos += 2 + length
    if (marker === SOS) break
  }
  return checkJpegEnd(bytes, pos, size)
}

/** SOI, TEM and the restart markers have no length field. */
function isStandalone (marker: number): boolean {
  return marker === 0xd8 || marker === 0x01 ||
    (marker >= 0xd0 && marker <= 0xd7)
}

function checkJpegEnd (
  bytes: Uint8Array, scanStart: number, size: Size | undefined
): Size {
  if (size === undefined) {
    throw new ImageDecodeError('the JPEG has no frame header (SOF)')
  }
  const end = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    .lastIndexOf(Buffer.from([0xff, EOI]))
  if (end < scanStart || end < bytes.length - EOI_SLACK) {
    throw new ImageDecodeError('the JPEG has no end-of-image marker; ' +
      'the file is cut short')
  }
  return size
}

// TIFF ---------------------------------------------------------------------

const TAG = {
  width: 256,
  height: 257,
  stripOffsets: 273,
  stripByteCounts: 279,
  tileOffsets: 324,
  tileByteCounts: 325
} as const

/** Bytes per value of each TIFF field type, BYTE (1) to IFD (13). */
const FIELD_SIZE = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4]

/** The first IFD's size, and every strip or tile inside the file. */
function tiffSize (bytes: Uint8Array): Size {
  const tags = readFirstIfd(bytes)
  const width = tags.get(TAG.width)?.[0]
  const height = tags.get(TAG.height)?.[0]
  if (width === undefined || height === undefined) {
    throw new ImageDecodeError('the TIFF does not give its width and height')
  }

  const offsets = tags.get(TAG.stripOffsets) ?? tags.get(TAG.tileOffsets)
  const counts = tags.get(TAG.stripByteCounts) ?? tags.get(TAG.tileByteCounts)
  checkBlocks(bytes.length, offsets ?? [], counts ?? [])
  return { width, height }
}

/** Reads the tags blendnet needs; every field must lie inside the file. */
function readFirstIfd (bytes: Uint8Array): Map<number, number[]> {
  const view = viewOf(bytes)
  const little = bytes[0] === 0x49
  if (view.getUint16(2, little) === 43) {
    throw new ImageDecodeError('BigTIFF images are not supported')
  }
  const ifd = view.getUint32(4, little)
  const count = view.getUint16(ifd, little)
  view.getUint32(ifd + 2 + 12 * count, little) // the next-IFD link

  const wanted = new Set<number>(Object.values(TAG))
  const tags = new Map<number, number[]>()
  for (let i = 0; i < count; i++) {
    const field = readField(view, ifd + 2 + 12 * i, little)
    if (wanted.has(field.tag)) tags.set(field.tag, field.values())
  }
  return tags
}

/** One IFD entry: tag, type, count, then the values or their offset. */
function readField (view: DataView, entry: number, little: boolean): {
  tag: number, values: () => number[]
} {
  const tag = view.getUint16(entry, little)
  const type = view.getUint16(entry + 2, little)
  const count = view.getUint32(entry + 4, little)
  const size = FIELD_SIZE[type] ?? 0
  const inline = count * size <= 4
  const start = inline ? entry + 8 : view.getUint32(entry + 8, little)
  if (start + count * size > view.byteLength) {
    throw new ImageDecodeError(`the TIFF field ${tag} lies outside the file`)
  }

  const values = (): number[] => Array.from({ length: count }, (_, i) =>
    size === 2 ? view.getUint16(start + 2 * i, little)
      : size === 4 ? view.getUint32(start + 4 * i, little)
        : view.getUint8(start + i))
  return { tag, values }
}

function checkBlocks (
  fileLength: number, offsets: number[], counts: number[]
): void {
  if (offsets.length === 0 || offsets.length !== counts.length) {
    throw new ImageDecodeError('the TIFF does not say where its image data is')
  }
  offsets.forEach((offset, i) => {
    if (offset + counts[i] > fileLength) {
      throw new ImageDecodeError(`the TIFF image data ends at byte ` +
        `${offset + counts[i]}, past the end of the file (${fileLength})`)
    }
  })
}

// OpenEXR ------------------------------------------------------------------

/** Version-field flags (OpenEXR file layout, "Version Field"). */
const EXR_TILED = 0x200
const EXR_DEEP = 0x800
const EXR_MULTIPART = 0x1000

/** Scanlines per chunk for each compression, NONE to DWAB. */
const LINES_PER_CHUNK = [1, 1, 1, 16, 32, 16, 32, 32, 32, 256]

interface ExrPart { attributes: Map<string, Uint8Array>, tiled: boolean }

/** The size from the first part's dataWindow; all chunks inside the file. */
function exrSize (bytes: Uint8Array): Size {
  const view = viewOf(bytes)
  const flags = view.getUint32(4, true)
  if ((flags & EXR_DEEP) !== 0) {
    throw new ImageDecodeError('deep OpenEXR images are not supported')
  }

  const multipart = (flags & EXR_MULTIPART) !== 0
  const { parts, end } = readExrHeaders(bytes, multipart, flags)
  let table = end
  for (const part of parts) {
    table = checkExrChunks(view, part, table, multipart)
  }
  return dataWindowSize(parts[0])
}

function readExrHeaders (
  bytes: Uint8Array, multipart: boolean, flags: number
): { parts: ExrPart[], end: number } {
  const parts: ExrPart[] = []
  let pos = 8
  do {
    const header = readExrAttributes(bytes, pos)
    const type = latin1(header.attributes.get('type') ?? new Uint8Array())
    const tiled = multipart
      ? type.startsWith('tiled')
      : (flags & EXR_TILED) !== 0
    parts.push({ attributes: header.attributes, tiled })
    pos = header.end
  } while (multipart && bytes[pos] !== 0)
  return { parts, end: multipart ? pos + 1 : pos }
}

/** name\0 type\0 size value ..., ended by an empty name. */
function readExrAttributes (
  bytes: Uint8Array, start: number
): { attributes: Map<string, Uint8Array>, end: number } {
  const view = viewOf(bytes)
  const attributes = new Map<string, Uint8Array>()
  let pos = start
  for (;;) {
    const name = readCString(bytes, pos)
    pos += name.length + 1
    if (name === '') return { attributes, end: pos }
    pos += readCString(bytes, pos).length + 1

    const size = view.getInt32(pos, true)
    if (size < 0 || pos + 4 + size > bytes.length) {
      throw new ImageDecodeError(`the OpenEXR attribute "${name}" is damaged`)
    }
    attributes.set(name, bytes.subarray(pos + 4, pos + 4 + size))
    pos += 4 + size
  }
}

function readCString (bytes: Uint8Array, start: number): string {
  const end = bytes.indexOf(0, start)
  if (end < 0 || end - start > 255) {
    throw new ImageDecodeError('the OpenEXR header is cut short or damaged')
  }
  return latin1(bytes.subarray(start, end))
}

function latin1 (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1')
}

function dataWindowSize (part: ExrPart): Size {
  const box = part.attributes.get('dataWindow')
  if (box === undefined || box.length !== 16) {
    throw new ImageDecodeError('the OpenEXR header has no dataWindow')
  }
  const view = viewOf(box)
  const [xMin, yMin, xMax, yMax] = [0, 4, 8, 12]
    .map(at => view.getInt32(at, true))
  return { width: xMax - xMin + 1, height: yMax - yMin + 1 }
}

/**
 * Every offset in the part's table must point at a chunk that ends
 * inside the file. Returns where the next part's table starts.
 */
function checkExrChunks (
  view: DataView, part: ExrPart, table: number, multipart: boolean
): number {
  const count = exrChunkCount(part)
  const tableEnd = table + 8 * count
  if (!(count >= 1 && tableEnd <= view.byteLength)) {
    throw new ImageDecodeError(`the OpenEXR offset table (${count} chunks) ` +
      'does not fit in the file')
  }
  // A chunk starts with the part number (multipart), the tile's four
  // coordinates or the first scanline, then the data size.
  const sizeAt = (multipart ? 4 : 0) + (part.tiled ? 16 : 4)
  for (let i = 0; i < count; i++) {
    const offset = Number(view.getBigUint64(table + 8 * i, true))
    if (offset < tableEnd || !exrChunkFits(view, offset + sizeAt)) {
      throw new ImageDecodeError(`the OpenEXR chunk ${i} lies outside ` +
        'the file; the file is cut short or damaged')
    }
  }
  return tableEnd
}

function exrChunkFits (view: DataView, sizeAt: number): boolean {
  if (sizeAt + 4 > view.byteLength) return false
  const size = view.getInt32(sizeAt, true)
  return size >= 0 && sizeAt + 4 + size <= view.byteLength
}

function exrChunkCount (part: ExrPart): number {
  const stored = part.attributes.get('chunkCount')
  if (stored?.length === 4) return viewOf(stored).getInt32(0, true)

  const { width, height } = dataWindowSize(part)
  if (part.tiled) return tileCount(part, width, height)
  const compression = part.attributes.get('compression')?.[0] ?? -1
  const lines = LINES_PER_CHUNK[compression]
  if (lines === undefined) {
    throw new ImageDecodeError(`the OpenEXR compression ${compression} ` +
      'is unknown')
  }
  return Math.ceil(height / lines)
}

/** Single-level tiles only: Blender writes no mipmaps. */
function tileCount (part: ExrPart, width: number, height: number): number {
  const tiles = part.attributes.get('tiles')
  if (tiles?.length !== 9) {
    throw new ImageDecodeError('the tiled OpenEXR has no tile description')
  }
  if ((tiles[8] & 0x0f) !== 0) {
    throw new ImageDecodeError('OpenEXR mipmapped tiles are not supported')
  }
  const view = viewOf(tiles)
  const across = Math.ceil(width / view.getUint32(0, true))
  return across * Math.ceil(height / view.getUint32(4, true))
}
