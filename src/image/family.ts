/**
 * Which image family a file belongs to, told by its first bytes. A file of
 * the wrong kind, or one cut off inside its magic number, is named plainly
 * here, before any format reader looks further.
 */
import { ImageDecodeError } from './bytes.js'

export type Family = 'PNG' | 'JPEG' | 'TIFF' | 'OpenEXR'

/** The bytes each family's files start with; TIFF has one per byte order. */
const MAGIC: Record<Family, number[][]> = {
  PNG: [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  JPEG: [[0xff, 0xd8, 0xff]],
  TIFF: [[0x49, 0x49, 0x2a, 0x00], [0x4d, 0x4d, 0x00, 0x2a]],
  OpenEXR: [[0x76, 0x2f, 0x31, 0x01]]
}

/** Throws, saying what the data is instead, unless it is a `family`. */
export function checkFamily (bytes: Uint8Array, family: Family): void {
  if (bytes.length === 0) throw new ImageDecodeError('the image is empty')
  const found = familyOf(bytes)
  if (found === family) return

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

/** Fewer bytes than the magic, all of them matching it. */
function isCutMagic (bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length < magic.length && startsWith(magic, bytes)
}

function withArticle (family: Family): string {
  return family === 'OpenEXR' ? 'an OpenEXR' : `a ${family}`
}

function hex (bytes: Uint8Array): string {
  return [...bytes].map(b => b.toString(16).padStart(2, '0')).join(' ')
}
