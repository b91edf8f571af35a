/**
 * OpenEXR: parse the header of every part for the size and the number of
 * chunks, then require each chunk in the offset tables to end inside the
 * file. The pixel data is not decompressed. Layout reference: "OpenEXR
 * File Layout" in the OpenEXR documentation.
 */
import { ImageDecodeError, latin1, viewOf, type Size } from './bytes.js'

/** Version-field flags (OpenEXR file layout, "Version Field"). */
const EXR_TILED = 0x200
const EXR_DEEP = 0x800
const EXR_MULTIPART = 0x1000

/** Scanlines per chunk for each compression, NONE to DWAB. */
const LINES_PER_CHUNK = [1, 1, 1, 16, 32, 16, 32, 32, 32, 256]

interface ExrPart { attributes: Map<string, Uint8Array>, tiled: boolean }

/** The size from the first part's dataWindow; all chunks inside the file. */
export function exrSize (bytes: Uint8Array): Size {
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

/** One header, or for multi-part files a list ended by an empty one. */
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

/** Names and type names are at most 255 bytes, each ended by a zero. */
function readCString (bytes: Uint8Array, start: number): string {
  const end = bytes.indexOf(0, start)
  if (end < 0 || end - start > 255) {
    throw new ImageDecodeError('the OpenEXR header is cut short or damaged')
  }
  return latin1(bytes.subarray(start, end))
}

/** dataWindow is a box2i: xMin, yMin, xMax, yMax, all inclusive. */
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

/** chunkCount when the header has it (multi-part), else from the size. */
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
