/**
 * TIFF: read the first image file directory (IFD) for the size and for
 * where the strips or tiles of image data are, and require every one of
 * them to end inside the file. Compressed data is not decoded.
 */
import { ImageDecodeError, viewOf, type Size } from './bytes.js'

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

/** One IFD entry; its values are read only for the tags we want. */
interface Field { tag: number, values: () => number[] }

/** The first IFD's size, and every strip or tile inside the file. */
export function tiffSize (bytes: Uint8Array): Size {
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
function readField (view: DataView, entry: number, little: boolean): Field {
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
