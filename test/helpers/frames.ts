/**
 * The check every end-to-end test makes: blendnet's frames equal, pixel
 * for pixel, what plain Blender rendered (plainRender's plain_NNNN.png).
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { comparePngPixels, verifyImage } from '../../src/image/verify.js'
import { frameFileName } from '../../src/job/naming.js'

export interface FrameCheck {
  /** When given, each frame must also be a PNG of exactly this size. */
  size?: { width: number, height: number }
  /** Names the file in failure messages. */
  label?: string
}

export async function assertFramesMatchPlain (outputDir: string,
  referenceDir: string, frames: number[], check: FrameCheck = {}): Promise<void> {
  for (const frame of frames) {
    const bytes = await readFile(join(outputDir, frameFileName(frame, 'PNG')))
    if (check.size !== undefined) {
      assert.equal(verifyImage(bytes, { format: 'PNG', ...check.size }).ok, true)
    }
    const plain = await readFile(join(referenceDir, `plain_${String(frame).padStart(4, '0')}.png`))
    const cmp = comparePngPixels(bytes, plain)
    assert.equal(cmp.same, true,
      `${check.label ?? ''}frame ${frame} differs from the local render: ${cmp.reason ?? `max diff ${cmp.maxDiff}`}`)
  }
}

/**
 * The files in an output folder a user sees as frames: blendnet's own
 * records (the journal, chunk logs) live in its hidden `.blendnet/`.
 */
export async function frameFiles (outputDir: string): Promise<string[]> {
  return (await readdir(outputDir)).filter(name => !name.startsWith('.')).sort()
}
