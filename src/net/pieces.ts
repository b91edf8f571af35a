/**
 * Job files in pieces: the coordinator hashes each file in fixed-size
 * pieces (the last one shorter) and lists the hashes in the job's
 * manifest, so that a worker can take pieces from any peer and check
 * each one on arrival. The whole file's SHA-256 stays the final check.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { WireError } from '../common/errors.js'
import type { ManifestFile } from './wire.js'

/** Piece sizes a manifest may use: powers of two in this range. */
const MIN_PIECE_BYTES = 16 * 1024
const MAX_PIECE_BYTES = 64 * 1024 * 1024

export interface PieceList {
  pieceBytes: number
  hashes: Uint8Array[]
}

export function pieceCount (size: number, pieceBytes: number): number {
  return Math.ceil(size / pieceBytes)
}

/** Byte range [start, end) of piece `index`. */
export function pieceRange (index: number, size: number,
  pieceBytes: number): { start: number, end: number } {
  const start = index * pieceBytes
  return { start, end: Math.min(size, start + pieceBytes) }
}

export interface HashedFile { sha256: Uint8Array, size: number, pieceHashes: Uint8Array[] }

/** The file's SHA-256 and its pieces' hashes, in one read. */
export async function hashPieces (path: string, pieceBytes: number): Promise<HashedFile> {
  const whole = createHash('sha256')
  const pieceHashes: Uint8Array[] = []
  let piece = createHash('sha256')
  let inPiece = 0
  let size = 0
  for await (const chunk of createReadStream(path, { highWaterMark: pieceBytes })) {
    const block = chunk as Buffer
    whole.update(block)
    size += block.byteLength
    for (let at = 0; at < block.byteLength;) {
      const take = Math.min(pieceBytes - inPiece, block.byteLength - at)
      piece.update(block.subarray(at, at + take))
      at += take
      inPiece += take
      if (inPiece === pieceBytes) {
        pieceHashes.push(piece.digest())
        piece = createHash('sha256')
        inPiece = 0
      }
    }
  }
  if (inPiece > 0) pieceHashes.push(piece.digest())
  return { sha256: whole.digest(), size, pieceHashes }
}

/** The file's pieces, or undefined when it travels whole (no piece list). */
export function pieceListOf (file: ManifestFile): PieceList | undefined {
  const pieceBytes = file.pieceBytes ?? 0
  if (pieceBytes === 0 || file.size === 0) return undefined
  return { pieceBytes, hashes: file.pieceHashes ?? [] }
}

/** Decoding check of a manifest file's piece list. */
export function checkPieceList (file: ManifestFile): void {
  const pieceBytes = file.pieceBytes ?? 0
  const hashes = file.pieceHashes ?? []
  if (pieceBytes === 0) {
    if (hashes.length > 0) throw new WireError('manifest file has piece hashes but no piece size')
    return
  }
  const powerOfTwo = (pieceBytes & (pieceBytes - 1)) === 0
  if (!powerOfTwo || pieceBytes < MIN_PIECE_BYTES || pieceBytes > MAX_PIECE_BYTES) {
    throw new WireError(`manifest piece size ${pieceBytes} is not a power of two from 16 KiB to 64 MiB`)
  }
  if (hashes.length !== pieceCount(file.size, pieceBytes)) {
    throw new WireError(`manifest file of ${file.size} bytes lists ${hashes.length} piece hashes`)
  }
  if (hashes.some(h => h.byteLength !== 32)) throw new WireError('manifest piece hash is not a SHA-256 hash')
}

/** One bit per piece: piece 0 is the high bit of the first byte. */
export class Bitfield {
  readonly bytes: Uint8Array
  private held = 0

  constructor (readonly size: number, bytes?: Uint8Array) {
    this.bytes = new Uint8Array(Math.ceil(size / 8))
    if (bytes === undefined) return
    if (bytes.byteLength !== this.bytes.byteLength) {
      throw new WireError(`a list of ${size} pieces takes ${this.bytes.byteLength} bytes, ` +
        `not ${bytes.byteLength}`)
    }
    this.bytes.set(bytes)
    const spare = this.bytes.byteLength * 8 - size
    if (spare > 0) this.bytes[this.bytes.byteLength - 1] &= (0xff << spare) & 0xff
    for (let i = 0; i < size; i++) if (this.has(i)) this.held++
  }

  static full (size: number): Bitfield {
    const field = new Bitfield(size)
    for (let i = 0; i < size; i++) field.set(i)
    return field
  }

  has (index: number): boolean {
    return (this.bytes[index >> 3] & (0x80 >> (index & 7))) !== 0
  }

  set (index: number): void {
    if (this.has(index)) return
    this.bytes[index >> 3] |= 0x80 >> (index & 7)
    this.held++
  }

  clear (index: number): void {
    if (!this.has(index)) return
    this.bytes[index >> 3] &= ~(0x80 >> (index & 7))
    this.held--
  }

  get count (): number {
    return this.held
  }

  get full (): boolean {
    return this.held === this.size
  }
}
