/**
 * PNG pixel values, decoded by pngjs once png.ts has checked the file's
 * structure, so that two renders can be compared by what they show, not
 * by their bytes: metadata such as the render date differs.
 */
import { PNG } from 'pngjs'
import { ImageDecodeError, errorText } from './bytes.js'
import { checkPng } from './png.js'

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

export interface PixelComparison {
  same: boolean
  /** The largest difference of one sample; Infinity when not comparable. */
  maxDiff: number
  reason?: string
}

/**
 * Decode a PNG in full, checking every chunk's CRC, the zlib stream and
 * the scanline filters. Throws ImageDecodeError on any damage.
 */
export function decodePngPixels (bytes: Uint8Array): PngPixels {
  checkPng(bytes)
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

  if (shape(left) !== shape(right)) {
    const reason = `images differ in shape: ${shape(left)} vs ${shape(right)}`
    return { same: false, maxDiff: Infinity, reason }
  }
  const maxDiff = largestDifference(left.data, right.data)
  return maxDiff === 0
    ? { same: true, maxDiff }
    : { same: false, maxDiff, reason: `pixels differ by up to ${maxDiff}` }
}

function shape (p: PngPixels): string {
  return `${p.width}x${p.height}, ${p.channels} channels, ${p.depth} bit`
}

function largestDifference (
  a: ArrayLike<number>, b: ArrayLike<number>
): number {
  let max = 0
  for (let i = 0; i < a.length; i++) {
    max = Math.max(max, Math.abs(a[i] - b[i]))
  }
  return max
}
