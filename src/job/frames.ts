/**
 * Frame lists: what the user types after `--frames`, and how the frames
 * of a job are cut into chunks.
 *
 *   0-250   1-10,20,30-40   -5--1   -5-5   1-100x5
 *
 * A list is sorted and without duplicates everywhere in blendnet, so that
 * chunks, file names and progress all count frames the same way.
 */

/**
 * Blender's frame limits (MINAFRAME / MAXFRAME in DNA_scene_types.h):
 * a scene cannot hold a frame outside them.
 */
export const MIN_FRAME = -1_048_574
export const MAX_FRAME = 1_048_574

/** A job bigger than this is a typo, not a render: refuse it early. */
export const MAX_FRAMES_PER_JOB = 1_000_000

/** The user-facing error for a frame list blendnet cannot read. */
export class FrameSpecError extends Error {
  readonly spec: string

  constructor (spec: string, message: string) {
    super(message)
    this.name = 'FrameSpecError'
    this.spec = spec
  }
}

/**
 * One part of a list: `7`, `-5`, `1-10`, `-5--1`, `1-100x5`.
 * The `x` step is the render-farm shorthand (OpenCue, fileseq) for what
 * Blender calls the frame step (`-j`, scene.frame_step): every Nth frame.
 */
const PART = /^(-?\d+)(?:-(-?\d+)(?:x(-?\d+))?)?$/

interface Range { start: number, end: number, step: number }

/** Parse a frame list into sorted, unique frame numbers. */
export function parseFrameSpec (spec: string): number[] {
  if (spec.trim() === '') {
    throw new FrameSpecError(spec,
      'the frame list is empty; give frames like 1-250 or 1,5,9')
  }

  const frames = new Set<number>()
  for (const part of spec.split(',')) {
    for (const frame of expand(parsePart(spec, part.trim()))) {
      frames.add(frame)
    }
    checkCount(spec, frames.size)
  }
  return [...frames].sort((a, b) => a - b)
}

/**
 * Frames the list names more than once (`1-10,5-20`: 5 to 10), sorted.
 * They render once; the user is told, since a typo can look like this.
 */
export function repeatedFrames (spec: string): number[] {
  const seen = new Set<number>()
  const repeated = new Set<number>()
  for (const part of spec.split(',')) {
    for (const frame of expand(parsePart(spec, part.trim()))) {
      if (seen.has(frame)) repeated.add(frame); else seen.add(frame)
    }
  }
  return [...repeated].sort((a, b) => a - b)
}

function parsePart (spec: string, part: string): Range {
  const match = PART.exec(part)
  if (match === null) {
    const shown = part === '' ? 'an empty part' : `"${part}"`
    throw new FrameSpecError(spec,
      `cannot read ${shown} in frame list "${spec}"; ` +
      'write frames like 1-10,20,30-40x2')
  }

  const start = toFrame(spec, match[1])
  const end = match[2] === undefined ? start : toFrame(spec, match[2])
  const step = match[3] === undefined ? 1 : Number(match[3])
  checkRange(spec, part, { start, end, step })
  return { start, end, step }
}

function toFrame (spec: string, digits: string): number {
  const frame = Number(digits) + 0 // `-0` is frame 0
  if (frame < MIN_FRAME || frame > MAX_FRAME) {
    throw new FrameSpecError(spec,
      `frame ${digits} is outside Blender's frame limits ` +
      `(${MIN_FRAME} to ${MAX_FRAME})`)
  }
  return frame
}

function checkRange (spec: string, part: string, range: Range): void {
  if (range.step <= 0) {
    throw new FrameSpecError(spec,
      `the step in "${part}" must be 1 or more`)
  }
  if (range.end < range.start) {
    throw new FrameSpecError(spec,
      `frame range "${part}" runs backwards; ` +
      `write it as ${range.end}-${range.start}`)
  }
  checkCount(spec, rangeLength(range))
}

function checkCount (spec: string, count: number): void {
  if (count > MAX_FRAMES_PER_JOB) {
    throw new FrameSpecError(spec,
      `frame list "${spec}" has more than ${MAX_FRAMES_PER_JOB} frames`)
  }
}

function rangeLength (range: Range): number {
  return Math.floor((range.end - range.start) / range.step) + 1
}

function expand (range: Range): number[] {
  const frames: number[] = []
  for (let f = range.start; f <= range.end; f += range.step) frames.push(f)
  return frames
}

/** The frames a scene renders by itself: its range and its frame step. */
export function framesFromScene (
  start: number, end: number, step: number
): number[] {
  const spec = `${start}-${end}x${step}`
  const range = { start, end, step }
  if (![start, end, step].every(Number.isSafeInteger)) {
    throw new FrameSpecError(spec,
      `the scene's frame range ${spec} is not made of whole numbers`)
  }

  toFrame(spec, String(start))
  toFrame(spec, String(end))
  checkRange(spec, spec, range)
  return expand(range)
}

/**
 * Sorted unique frames as compact runs for people: `1-10,20,30-40`.
 * Parsing the result gives the same frames back.
 */
export function formatFrameList (frames: readonly number[]): string {
  const sorted = [...new Set(frames)].sort((a, b) => a - b)
  const runs: string[] = []
  let first = 0
  for (let i = 1; i <= sorted.length; i++) {
    if (i < sorted.length && sorted[i] === sorted[i - 1] + 1) continue
    runs.push(formatRun(sorted[first], sorted[i - 1]))
    first = i
  }
  return sorted.length === 0 ? '' : runs.join(',')
}

function formatRun (start: number, end: number): string {
  return start === end ? String(start) : `${start}-${end}`
}

/** Cut sorted frames into consecutive chunks of at most `chunkSize`. */
export function splitIntoChunks (
  frames: readonly number[], chunkSize: number
): number[][] {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`chunk size must be a whole number of 1 or more, ` +
      `not ${chunkSize}`)
  }

  const sorted = [...frames].sort((a, b) => a - b)
  const chunks: number[][] = []
  for (let i = 0; i < sorted.length; i += chunkSize) {
    chunks.push(sorted.slice(i, i + chunkSize))
  }
  return chunks
}
