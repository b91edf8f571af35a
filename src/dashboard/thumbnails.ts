/**
 * Small PNG previews of finished frames for the dashboard, made on the
 * coordinator from the verified files in the output folder:
 *
 * - PNG frames are decoded (pngjs) and averaged down to THUMB_WIDTH wide;
 * - JPEG frames are shown by the browser itself, from the frame file;
 * - TIFF and OpenEXR have no preview: browsers cannot show them and
 *   decoding them here is not worth a dependency; the page shows the
 *   format's name in their place (docs/progress.md).
 *
 * One preview is made at a time (decoding a large frame takes a CPU for a
 * while) and kept in memory, a few kilobytes each.
 */
import { readFile } from 'node:fs/promises'
import { PNG } from 'pngjs'

export const THUMB_WIDTH = 240

export type PreviewKind = 'png' | 'browser' | 'none'

export function previewKindOf (format: string): PreviewKind {
  if (format === 'PNG') return 'png'
  if (format === 'JPEG') return 'browser'
  return 'none'
}

/** Kept previews; beyond this many, the oldest are made again on demand. */
const MAX_KEPT = 1000

export class Thumbnails {
  private readonly kept = new Map<number, Promise<Buffer | undefined>>()
  private queue: Promise<unknown> = Promise.resolve()

  /** `fileOf` names a finished frame's file, or undefined for others. */
  constructor (private readonly fileOf: (frame: number) => string | undefined) {}

  /** The frame's preview PNG; undefined when it cannot be made. */
  async of (frame: number): Promise<Buffer | undefined> {
    let made = this.kept.get(frame)
    if (made === undefined) {
      const path = this.fileOf(frame)
      if (path === undefined) return undefined
      made = this.enqueue(path)
      this.kept.set(frame, made)
      if (this.kept.size > MAX_KEPT) this.kept.delete(this.kept.keys().next().value as number)
      // A frame that could not be read now may be readable later.
      void made.then((png) => { if (png === undefined) this.kept.delete(frame) })
    }
    return await made
  }

  private async enqueue (path: string): Promise<Buffer | undefined> {
    const next = this.queue.then(async () => await previewOf(path)).catch(() => undefined)
    this.queue = next
    return await next
  }
}

/** A PNG at most THUMB_WIDTH wide, each pixel the mean of its box. */
export async function previewOf (path: string): Promise<Buffer> {
  const source = PNG.sync.read(await readFile(path))
  const scale = Math.max(1, source.width / THUMB_WIDTH)
  const width = Math.max(1, Math.round(source.width / scale))
  const height = Math.max(1, Math.round(source.height / scale))
  const out = new PNG({ width, height })
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) averageBox(source, out, x, y, scale)
  }
  return PNG.sync.write(out)
}

function averageBox (source: PNG, out: PNG, x: number, y: number, scale: number): void {
  const x0 = Math.floor(x * scale)
  const y0 = Math.floor(y * scale)
  const x1 = Math.min(source.width, Math.max(x0 + 1, Math.floor((x + 1) * scale)))
  const y1 = Math.min(source.height, Math.max(y0 + 1, Math.floor((y + 1) * scale)))
  const sum = [0, 0, 0, 0]
  for (let sy = y0; sy < y1; sy++) {
    for (let sx = x0; sx < x1; sx++) {
      const at = (sy * source.width + sx) * 4
      for (let c = 0; c < 4; c++) sum[c] += source.data[at + c]
    }
  }
  const n = (x1 - x0) * (y1 - y0)
  const to = (y * out.width + x) * 4
  for (let c = 0; c < 4; c++) out.data[to + c] = Math.round(sum[c] / n)
}
