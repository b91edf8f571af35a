/**
 * The scenes of a .blend file and their frame ranges, read without
 * Blender. Blender writes one `REND` block per scene right after the
 * header (writefile.cc, write_renderinfo) for exactly this purpose: so a
 * render manager can plan a file it cannot load. blendnet uses it for
 * files saved by a Blender newer than the submitting machine's.
 */
import { readBlendStart, type BlendHeader } from './header.js'

export interface RenderInfo {
  scene: string
  frameStart: number
  frameEnd: number
}

/** REND blocks come first; this is far more than a few hundred scenes. */
const READ_LIMIT = 256 * 1024

export async function readRenderInfo (path: string): Promise<RenderInfo[]> {
  const { header, content } = await readBlendStart(path, READ_LIMIT)
  return parseRenderInfo(header, content)
}

/**
 * Walks the file blocks from the header on, keeping REND blocks, until
 * the first other block after them (the thumbnail or the global block).
 * The block header has three layouts:
 *   4-byte pointers:  code, len i32, old ptr u32, sdna i32, nr i32 (20)
 *   8-byte pointers:  code, len i32, old ptr u64, sdna i32, nr i32 (24)
 *   17-byte header (Blender 5): code, sdna i32, old u64, len i64, nr i64 (32)
 */
export function parseRenderInfo (header: BlendHeader,
  content: Uint8Array): RenderInfo[] {
  const view = new DataView(content.buffer, content.byteOffset, content.byteLength)
  const little = header.endianness === 'little'
  const text = Buffer.from(content.subarray(0, 17)).toString('latin1')
  const large = /^BLENDER17-01/.test(text)
  const headerSize = large ? 17 : 12
  const blockHeaderSize = large ? 32 : header.pointerSize === 8 ? 24 : 20
  const found: RenderInfo[] = []
  let at = headerSize
  while (at + blockHeaderSize <= content.length) {
    const code = Buffer.from(content.subarray(at, at + 4)).toString('latin1')
    const length = large
      ? Number(view.getBigInt64(at + 16, little))
      : view.getInt32(at + 4, little)
    const data = at + blockHeaderSize
    if (code === 'REND') {
      if (length < 8 || data + length > content.length) break
      found.push({
        frameStart: view.getInt32(data, little),
        frameEnd: view.getInt32(data + 4, little),
        scene: cString(content.subarray(data + 8, data + length))
      })
    } else if (found.length > 0 || code === 'ENDB' || code === 'GLOB') {
      break
    }
    if (length < 0) break
    at = data + length
  }
  return found
}

function cString (bytes: Uint8Array): string {
  const end = bytes.indexOf(0)
  return Buffer.from(end === -1 ? bytes : bytes.subarray(0, end)).toString('utf8')
}
