/**
 * What the format readers share: the error they throw, the size they
 * report, and a few helpers for reading raw bytes.
 */

/** Image data that cannot be read; the message says why, in one line. */
export class ImageDecodeError extends Error {
  constructor (message: string, cause?: unknown) {
    super(message, { cause })
    this.name = 'ImageDecodeError'
  }
}

/** Width and height in pixels, as the file's header gives them. */
export interface Size { width: number, height: number }

/** A view of just these bytes, which may be a slice of a larger buffer. */
export function viewOf (bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Chunk types and attribute names are single-byte text. */
export function latin1 (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1')
}

export function errorText (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
