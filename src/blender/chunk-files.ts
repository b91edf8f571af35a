/**
 * The chunk directory: created empty before Blender starts, so that every
 * file found in it afterwards was written by this render (case B26), and
 * read back afterwards to check what Blender really wrote.
 */
import { mkdir, open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ImageFormat } from '../job/naming.js'
import { ChunkDirNotEmptyError } from './errors.js'

/** Blender's whole output for the chunk, kept beside its frames. */
export const CHUNK_LOG_NAME = 'blender.log'

export interface ChunkFile {
  name: string
  size: number
  isFile: boolean
  /** Starts with the signature of the format asked for. */
  hasImageSignature: boolean
}

/** The first bytes of each format; enough to catch text or a truncation. */
const SIGNATURES: Record<ImageFormat, number[][]> = {
  PNG: [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  JPEG: [[0xff, 0xd8, 0xff]],
  TIFF: [[0x49, 0x49, 0x2a, 0x00], [0x4d, 0x4d, 0x00, 0x2a]],
  OPEN_EXR: [[0x76, 0x2f, 0x31, 0x01]],
  OPEN_EXR_MULTILAYER: [[0x76, 0x2f, 0x31, 0x01]]
}

/** Creates `dir`, or accepts it when it exists and is empty. */
export async function prepareChunkDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  const entries = await readdir(dir)
  if (entries.length > 0) throw new ChunkDirNotEmptyError(dir, entries)
}

/** Everything in the chunk dir except the log, sorted by name. */
export async function listChunkFiles (
  dir: string, format: ImageFormat
): Promise<ChunkFile[]> {
  const names = (await readdir(dir)).filter(n => n !== CHUNK_LOG_NAME)
  const files = await Promise.all(
    names.map(async name => await describe(join(dir, name), name, format)))
  return files.sort((a, b) => a.name < b.name ? -1 : 1)
}

async function describe (
  path: string, name: string, format: ImageFormat
): Promise<ChunkFile> {
  const info = await stat(path)
  const isFile = info.isFile()
  const start = isFile ? await readStart(path) : Buffer.alloc(0)
  const hasImageSignature = SIGNATURES[format]
    .some(sig => sig.every((byte, i) => start[i] === byte))
  return { name, size: info.size, isFile, hasImageSignature }
}

async function readStart (path: string): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(8), 0, 8, 0)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}
