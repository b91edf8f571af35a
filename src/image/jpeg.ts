/**
 * JPEG: walk the marker segments up to the start of the scan, taking the
 * size from the frame header, then look for the end-of-image marker. The
 * entropy-coded scan itself is not decoded.
 */
import { ImageDecodeError, viewOf, type Size } from './bytes.js'

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
export function jpegSize (bytes: Uint8Array): Size {
  const view = viewOf(bytes)
  let size: Size | undefined
  let pos = 2
  let marker = 0
  while (marker !== SOS) {
    if (bytes[pos] !== 0xff) {
      throw new ImageDecodeError(`the JPEG has no marker at byte ${pos}`)
    }
    marker = view.getUint8(pos + 1)
    const length = segmentLength(view, pos, marker)
    if (SOF_MARKERS.has(marker)) size = frameSize(view, pos)
    pos += length
  }
  return checkJpegEnd(bytes, pos, size)
}

/** Bytes from this marker to the next; EOI must not come before SOS. */
function segmentLength (view: DataView, pos: number, marker: number): number {
  if (marker === 0xff) return 1 // a fill byte
  if (isStandalone(marker)) return 2
  if (marker === EOI) {
    throw new ImageDecodeError('the JPEG ends before its image data')
  }
  return 2 + view.getUint16(pos + 2)
}

/** SOI, TEM and the restart markers have no length field. */
function isStandalone (marker: number): boolean {
  return marker === 0xd8 || marker === 0x01 ||
    (marker >= 0xd0 && marker <= 0xd7)
}

/** SOF: marker, length, sample precision, then height and width. */
function frameSize (view: DataView, pos: number): Size {
  const height = view.getUint16(pos + 5)
  return { width: view.getUint16(pos + 7), height }
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
