/**
 * Is this rendered frame a whole image of the size we asked for? A chunk
 * is done only when every frame passes (case B26: a file that merely
 * exists proves nothing). PNG is checked as far as a decoder would
 * (png.ts), without unfiltering its pixels; the other formats are
 * walked far enough to find the size and to see that every block of
 * image data they point at lies inside the file, which catches the usual
 * failure, a file cut short. Each format's reader has its own file here.
 */
import type { ImageFormat } from '../job/naming.js'
import { ImageDecodeError, type Size } from './bytes.js'
import { exrSize } from './exr.js'
import { checkFamily, type Family } from './family.js'
import { jpegSize } from './jpeg.js'
import { checkPng } from './png.js'
import { tiffSize } from './tiff.js'

export { ImageDecodeError } from './bytes.js'
export {
  comparePngPixels, decodePngPixels, type PixelComparison, type PngPixels
} from './png-pixels.js'

export type ImageCheck =
  | { ok: true, width: number, height: number }
  | { ok: false, reason: string }

export interface ExpectedImage {
  format: ImageFormat
  /** 0 by 0: any size (a job whose scene could not be read at submit). */
  width: number
  height: number
}

const FAMILY: Record<ImageFormat, Family> = {
  PNG: 'PNG',
  JPEG: 'JPEG',
  TIFF: 'TIFF',
  OPEN_EXR: 'OpenEXR',
  OPEN_EXR_MULTILAYER: 'OpenEXR'
}

/** Each reader returns the size once the file's structure checks out. */
const READERS: Record<Family, (bytes: Uint8Array) => Size> = {
  PNG: checkPng,
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
    const anySize = expected.width === 0 && expected.height === 0
    if (!anySize && (size.width !== expected.width || size.height !== expected.height)) {
      return fail(`image is ${size.width}x${size.height}, ` +
        `expected ${expected.width}x${expected.height}`)
    }
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

function imageSize (bytes: Uint8Array, family: Family): Size {
  checkFamily(bytes, family)
  return READERS[family](bytes)
}

function fail (reason: string): ImageCheck {
  return { ok: false, reason }
}

/** Readers index past the end of a short file; DataView throws RangeError. */
function reasonOf (err: unknown, family: Family): string {
  if (err instanceof ImageDecodeError) return err.message
  if (err instanceof RangeError) {
    return `the ${family} data ends early; the file is cut short or damaged`
  }
  return `the ${family} data cannot be read (${String(err)})`
}
