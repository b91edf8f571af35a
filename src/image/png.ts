/**
 * PNG structure: every chunk inside the file with a good CRC, a header
 * naming a colour type and depth that exist, and an image data stream
 * that inflates to exactly the bytes the size calls for, each scanline
 * starting with a filter PNG defines. That is every way a file can be
 * damaged that a decoder would notice, found without unfiltering the
 * pixels: png-pixels.ts decodes them where their values matter.
 */
import { crc32, inflateSync } from 'node:zlib'
import {
  ImageDecodeError, errorText, latin1, viewOf, type Size
} from './bytes.js'
import { checkFamily } from './family.js'

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

/** The bit depths each colour type allows. */
const PNG_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]
}

/** Scanline filters 0-4: none, sub, up, average, Paeth. */
const LAST_FILTER = 4

/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [
  [0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4],
  [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]
]

/**
 * The size from IHDR; throws unless this is a PNG whose chunks, header
 * and image data are whole, down to each scanline's filter byte.
 */
export function checkPng (bytes: Uint8Array): Size {
  checkFamily(bytes, 'PNG')
  const layout = readPngChunks(bytes)
  checkPngImageData(layout)
  return { width: layout.width, height: layout.height }
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

  checkPngHeader(bytes)
  const samples = PNG_SAMPLES[bytes[25]]
  return {
    width: view.getUint32(16),
    height: view.getUint32(20),
    pixelBits: samples * bytes[24],
    interlaced: bytes[28] === 1,
    imageData
  }
}

/** A chunk is length, type, data, then a CRC of type and data. */
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

/** IHDR: a colour type, depth and methods that PNG defines. */
function checkPngHeader (bytes: Uint8Array): void {
  const [depth, colour, compression, filter, interlace] = bytes.subarray(24, 29)
  if (!(PNG_DEPTHS[colour]?.includes(depth) ?? false)) {
    throw new ImageDecodeError(`the PNG header names colour type ${colour} at ${depth} bits, which PNG does not define`)
  }
  if (compression !== 0 || filter !== 0 || interlace > 1) {
    throw new ImageDecodeError('the PNG header names a compression, filter or interlace method PNG does not define')
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
  checkFilters(raw, layout)
}

/** Every scanline, of every interlace pass, starts with a known filter. */
function checkFilters (raw: Uint8Array, layout: PngLayout): void {
  let pos = 0
  for (const [width, height] of passSizes(layout)) {
    if (width <= 0 || height <= 0) continue
    const stride = Math.ceil(width * layout.pixelBits / 8) + 1
    for (let row = 0; row < height; row++, pos += stride) {
      if (raw[pos] > LAST_FILTER) {
        throw new ImageDecodeError(`the PNG image data is damaged (unknown scanline filter ${raw[pos]})`)
      }
    }
  }
}

/** Filtered scanlines: each row is a filter byte and its pixels. */
function rawPngLength (layout: PngLayout): number {
  return passSizes(layout).reduce((sum, [width, height]) =>
    width <= 0 || height <= 0
      ? sum
      : sum + height * (Math.ceil(width * layout.pixelBits / 8) + 1), 0)
}

/** Width and height of each image stored: one, or Adam7's seven passes. */
function passSizes (layout: PngLayout): Array<[number, number]> {
  if (!layout.interlaced) return [[layout.width, layout.height]]
  return ADAM7.map(([x, y, dx, dy]) => [
    Math.ceil((layout.width - x) / dx), Math.ceil((layout.height - y) / dy)])
}
