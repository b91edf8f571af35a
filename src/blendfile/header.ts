/**
 * The first bytes of a .blend file: which Blender saved it, for which
 * pointer size and byte order, and whether it is compressed. Submit reads
 * this to refuse broken files early (cases B08, B22); only the start of
 * the file is read, even when it is compressed.
 */
import { createReadStream } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { createGunzip, createZstdDecompress } from 'node:zlib'
import type { Transform } from 'node:stream'

export type BlendCompression = 'none' | 'gzip' | 'zstd'

export interface BlendHeader {
  compression: BlendCompression
  pointerSize: 4 | 8
  endianness: 'little' | 'big'
  version: { major: number, minor: number }
  /** As Blender writes it: '2.82', '3.4', '5.0'. */
  versionString: string
}

export type BlendFileErrorKind =
  | 'missing' | 'directory' | 'unreadable' | 'empty' | 'truncated'
  | 'corrupt' | 'double-compressed' | 'not-a-blend-file' | 'unknown-header'

/** A .blend file blendnet cannot use; the message is for the user. */
export class BlendFileError extends Error {
  readonly kind: BlendFileErrorKind
  readonly path: string

  constructor (
    kind: BlendFileErrorKind, path: string, message: string, cause?: unknown
  ) {
    super(message, { cause })
    this.name = 'BlendFileError'
    this.kind = kind
    this.path = path
  }
}

/** The file exists and is readable but holds something else. */
export class NotABlendFileError extends BlendFileError {
  constructor (path: string, start: Uint8Array, layer: BlendCompression) {
    const where = layer === 'none' ? 'it' : `inside its ${layer} layer it`
    super('not-a-blend-file', path, `"${path}" is not a .blend file ` +
      `(${where} starts with ${describeBytes(start)})`)
    this.name = 'NotABlendFileError'
  }
}

const MAGIC = 'BLENDER'
/** Enough for both header layouts (12 and 17 bytes) with room to grow. */
const HEADER_BYTES = 64

/** Read the header of the .blend file at `path`. */
export async function readBlendHeader (path: string): Promise<BlendHeader> {
  return (await readBlendStart(path, HEADER_BYTES)).header
}

/**
 * The header and the first `limit` bytes of the file's content (after
 * decompression), for readers of the blocks that follow the header.
 */
export async function readBlendStart (
  path: string, limit: number
): Promise<{ header: BlendHeader, content: Uint8Array }> {
  const start = await readStart(path, Math.max(limit, HEADER_BYTES))
  const compression = compressionOf(start)
  if (compression === 'none') {
    return { header: parseHeader(path, start, 'none'), content: start }
  }

  const inner = await decompressStart(path, compression, Math.max(limit, HEADER_BYTES))
  const twice = compressionOf(inner)
  if (twice !== 'none') {
    throw new BlendFileError('double-compressed', path,
      `"${path}" is compressed twice (${twice} inside ${compression}); ` +
      'Blender cannot read it — re-save it from Blender')
  }
  return { header: parseHeader(path, inner, compression), content: inner }
}

function compressionOf (bytes: Uint8Array): BlendCompression {
  if (startsWith(bytes, [0x1f, 0x8b])) return 'gzip'
  if (startsWith(bytes, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd'
  return 'none'
}

/** The raw first bytes, turning file-system failures into user errors. */
async function readStart (path: string, limit: number): Promise<Uint8Array> {
  try {
    const file = await open(path, 'r')
    try {
      return await readFirstBytes(path, file, limit)
    } finally {
      await file.close()
    }
  } catch (err) {
    throw fileSystemError(path, err)
  }
}

async function readFirstBytes (
  path: string, file: FileHandle, limit: number
): Promise<Uint8Array> {
  if ((await file.stat()).isDirectory()) {
    throw Object.assign(new Error('is a directory'), { code: 'EISDIR' })
  }

  const { buffer, bytesRead } = await file.read({
    buffer: Buffer.alloc(limit), position: 0
  })
  if (bytesRead === 0) {
    throw new BlendFileError('empty', path, `"${path}" is empty (0 bytes)`)
  }
  return buffer.subarray(0, bytesRead)
}

function fileSystemError (path: string, err: unknown): BlendFileError {
  if (err instanceof BlendFileError) return err
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EISDIR') {
    return new BlendFileError('directory', path,
      `"${path}" is a folder, not a .blend file`)
  }
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new BlendFileError('missing', path,
      `"${path}" does not exist`, err)
  }
  const reason = code === 'EACCES' ? 'permission denied' : errorText(err)
  return new BlendFileError('unreadable', path,
    `cannot read "${path}": ${reason}`, err)
}

/**
 * The first `limit` bytes of the decompressed content, streaming so that
 * a large file is never read whole.
 */
async function decompressStart (
  path: string, compression: 'gzip' | 'zstd', limit: number
): Promise<Uint8Array> {
  const source = createReadStream(path, { highWaterMark: 16 * 1024 })
  const inflate: Transform =
    compression === 'gzip' ? createGunzip() : createZstdDecompress()
  let readFailure: unknown
  source.on('error', (err) => { readFailure = err; inflate.destroy(err) })

  const chunks: Buffer[] = []
  let length = 0
  try {
    for await (const chunk of source.pipe(inflate) as AsyncIterable<Buffer>) {
      chunks.push(chunk)
      length += chunk.length
      if (length >= limit) break
    }
  } catch (err) {
    if (err === readFailure) throw fileSystemError(path, err)
    throw streamError(path, compression, length, err)
  } finally {
    source.destroy()
    inflate.destroy()
  }
  return Buffer.concat(chunks).subarray(0, limit)
}

function streamError (
  path: string, compression: string, length: number, err: unknown
): BlendFileError {
  if ((err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') {
    return new BlendFileError('truncated', path, `"${path}" is ` +
      `${compression}-compressed but ends after ${length} bytes of ` +
      'content; the file is cut short', err)
  }
  return new BlendFileError('corrupt', path, `"${path}" starts like a ` +
    `${compression} file but its data is damaged (${errorText(err)})`, err)
}

/**
 * Two layouts exist (Blender's BLO_core_blend_header.hh):
 *   BLENDER-v304        pointer '-' 8 / '_' 4, 'v' little / 'V' big,
 *                       3 version digits (304 = 3.4, 282 = 2.82)
 *   BLENDER17-01v0500   header size, '-', file format version, byte
 *                       order, 4 version digits; pointers are always 8
 */
const OLD_LAYOUT = /^BLENDER([-_])([vV])(\d{3})/
const NEW_LAYOUT = /^BLENDER(\d{2})-(\d{2})([vV])(\d{4})/

function parseHeader (
  path: string, bytes: Uint8Array, compression: BlendCompression
): BlendHeader {
  const text = Buffer.from(bytes).toString('latin1')
  if (!text.startsWith(MAGIC) && !MAGIC.startsWith(text)) {
    throw new NotABlendFileError(path, bytes, compression)
  }
  // Any real .blend goes on long after its header.
  if (bytes.length < HEADER_BYTES) {
    throw new BlendFileError('truncated', path, `"${path}" ends after ` +
      `${bytes.length} bytes; the file is cut short`)
  }

  const old = OLD_LAYOUT.exec(text)
  if (old !== null) {
    return header(compression, old[1] === '-' ? 8 : 4, old[2], old[3])
  }
  const next = NEW_LAYOUT.exec(text)
  if (next !== null) return header(compression, 8, next[3], next[4])
  throw new BlendFileError('unknown-header', path, `"${path}" has a ` +
    `Blender header blendnet cannot read (${describeBytes(bytes)}); ` +
    'it may come from a newer Blender')
}

function header (
  compression: BlendCompression, pointerSize: 4 | 8,
  order: string, digits: string
): BlendHeader {
  const number = Number(digits)
  const major = Math.floor(number / 100)
  const minor = number % 100
  // Blender 2.x and older print two minor digits (2.05, 2.82), 3.0+ one.
  const shownMinor = major < 3 ? String(minor).padStart(2, '0') : minor
  return {
    compression,
    pointerSize,
    endianness: order === 'v' ? 'little' : 'big',
    version: { major, minor },
    versionString: `${major}.${shownMinor}`
  }
}

function startsWith (bytes: Uint8Array, prefix: number[]): boolean {
  return prefix.every((byte, i) => bytes[i] === byte)
}

/** `89 50 4e 47 0d 0a 1a 0a (".PNG....")`, for error messages. */
function describeBytes (bytes: Uint8Array): string {
  const first = [...bytes.subarray(0, 8)]
  const hex = first.map(b => b.toString(16).padStart(2, '0')).join(' ')
  const text = first
    .map(b => b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')
    .join('')
  return `${hex} ("${text}")`
}

function errorText (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
