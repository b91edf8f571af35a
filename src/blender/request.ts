/**
 * Checking a chunk request before any process starts, and the names it
 * goes by in messages and results.
 */
import { basename, join } from 'node:path'
import { formatFrameList, MAX_FRAME, MIN_FRAME } from '../job/frames.js'
import {
  frameFileName, isImageFormat, type ImageFormat
} from '../job/naming.js'

export interface ChunkIdentity {
  blendPath: string
  scene: string
  frames: number[]
  format: ImageFormat
  chunkDir: string
  resolutionPercentage?: number
}

/** Blender's limits for resolution_percentage (RNA: 1 to 32767). */
const MAX_PERCENTAGE = 32767

/** Throws RangeError for a request no Blender run could satisfy. */
export function checkRequest (req: ChunkIdentity): void {
  const problem = framesProblem(req.frames) ?? otherProblem(req)
  if (problem !== undefined) {
    throw new RangeError(`cannot render ${describeChunk(req)}: ${problem}`)
  }
}

function framesProblem (frames: number[]): string | undefined {
  if (frames.length === 0) return 'the chunk has no frames'
  const bad = frames.find(f =>
    !Number.isSafeInteger(f) || f < MIN_FRAME || f > MAX_FRAME)
  if (bad !== undefined) return `${bad} is not a frame Blender can render`
  if (new Set(frames).size !== frames.length) return 'a frame is listed twice'
  return undefined
}

function otherProblem (req: ChunkIdentity): string | undefined {
  if (req.scene === '') return 'no scene is named'
  if (!isImageFormat(req.format)) return `${req.format} is not an image format`
  const pct = req.resolutionPercentage
  if (pct !== undefined &&
    (!Number.isInteger(pct) || pct < 1 || pct > MAX_PERCENTAGE)) {
    return `resolution ${pct}% is not a whole percentage of 1 to 32767`
  }
  return undefined
}

/** `frames 3-5 of scene 'night' in "shot.blend"`, for messages. */
export function describeChunk (req: ChunkIdentity): string {
  const noun = req.frames.length === 1 ? 'frame' : 'frames'
  return `${noun} ${formatFrameList(req.frames)} of scene '${req.scene}' ` +
    `in "${basename(req.blendPath)}"`
}

/** Where each planned frame is, once the chunk is judged rendered. */
export function savedFrames (
  req: ChunkIdentity
): Array<{ frame: number, path: string }> {
  return req.frames.map(frame =>
    ({ frame, path: join(req.chunkDir, frameFileName(frame, req.format)) }))
}
