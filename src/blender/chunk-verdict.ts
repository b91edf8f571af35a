/**
 * The verdict on a rendered chunk. The exit code is never enough (cases
 * B02-B04, B07, B14, B26, B29): a chunk counts as rendered only when
 * Blender read the expected file, saved exactly the planned frames under
 * blendnet's names inside the chunk dir, complained about nothing, and the
 * dir holds exactly those frames as non-empty images.
 */
import { basename, dirname, resolve } from 'node:path'
import { frameFileName, type ImageFormat } from '../job/naming.js'
import type { ChunkFile } from './chunk-files.js'
import type { BlenderLog } from './chunk-log.js'
import { blenderWords, isReadFailure } from './log-parser.js'

export interface ChunkExpectation {
  blendPath: string
  chunkDir: string
  frames: number[]
  format: ImageFormat
}

export interface ProcessOutcome {
  exitCode: number | undefined
  signal: string | undefined
  timedOut: boolean
  cancelled: boolean
  /** Stopped by blendnet for printing nothing for `hangTimeoutMs`. */
  hung: boolean
  timeoutMs: number | undefined
  hangTimeoutMs: number | undefined
  /** Set when Blender could not be started at all (no such file...). */
  startError?: string
}

/** Why the chunk failed, in one line, or undefined when it is good. */
export function judgeChunk (
  expect: ChunkExpectation, outcome: ProcessOutcome,
  log: BlenderLog, files: ChunkFile[]
): string | undefined {
  return processReason(outcome, log) ??
    blenderReason(log) ??
    exitReason(outcome, log) ??
    readBlendReason(expect, log) ??
    savedReason(expect, log) ??
    scriptReason(log) ??
    filesReason(expect, files)
}

/** Killed by blendnet or by a signal: say so, with the last progress. */
function processReason (
  outcome: ProcessOutcome, log: BlenderLog
): string | undefined {
  const progress = log.lastProgress === undefined
    ? 'no progress was printed'
    : `last progress: ${log.lastProgress.trim()}`
  if (outcome.cancelled) return 'the render was cancelled'
  if (outcome.startError !== undefined) {
    return `Blender could not be started: ${outcome.startError}`
  }
  // Before the time limit, which can strike while a hung Blender dies.
  if (outcome.hung) return hungReason(outcome, log)
  if (outcome.timedOut) {
    const seconds = (outcome.timeoutMs ?? 0) / 1000
    return `Blender was killed after the ${seconds} s time limit; ${progress}`
  }
  if (outcome.signal === undefined) return undefined

  const words = blenderReason(log)
  // blendnet's own kills are named above: a SIGKILL from elsewhere is
  // almost always the kernel's out-of-memory killer.
  const said = words !== undefined
    ? ` (${words})`
    : outcome.signal === 'SIGKILL' ? ' (most likely out of memory)' : ''
  return `Blender died of ${outcome.signal}${said}; ${progress}`
}

/** How long Blender was silent, and the line it fell silent after. */
function hungReason (outcome: ProcessOutcome, log: BlenderLog): string {
  const seconds = (outcome.hangTimeoutMs ?? 0) / 1000
  const last = lastLine(log)
  const said = last === undefined
    ? 'it printed nothing'
    : `last line: "${last}"`
  return `Blender hung: no output for ${seconds} s (${said})`
}

/** Blender's own complaint, most telling first. */
export function blenderReason (log: BlenderLog): string | undefined {
  const failed = log.markers.find(m => m.event === 'chunk-failed')
  if (failed !== undefined) return failed.reason
  if (log.exceptions.length > 0) return blenderWords(log.exceptions[0])
  if (log.errors.length > 0) return errorReason(log.errors)
  if (log.tracebacks > 0) return 'a Python script failed (see the log)'
  return log.problems[0]
}

/** Read failures first: anything after them is a consequence. */
function errorReason (errors: string[]): string {
  const read = errors.find(isReadFailure)
  if (read !== undefined) {
    return `cannot read the .blend file: ${blenderWords(read)}`
  }
  return blenderWords(errors[0])
}

function exitReason (
  outcome: ProcessOutcome, log: BlenderLog
): string | undefined {
  if (outcome.exitCode === 0) return undefined
  const last = lastLine(log)
  const said = last === undefined ? '' : `: ${last}`
  return `Blender exited with code ${outcome.exitCode}${said}`
}

/** The last line with something on it, trimmed. */
function lastLine (log: BlenderLog): string | undefined {
  return log.logTail.filter(l => l.trim() !== '').at(-1)?.trim()
}

/** Anything saved before the job's file was read is another scene (B07). */
function readBlendReason (
  expect: ChunkExpectation, log: BlenderLog
): string | undefined {
  const wanted = resolve(expect.blendPath)
  const early = log.saved.find(s => s.beforeReadBlend)
  if (early !== undefined) {
    return `Blender saved "${early.path}" before reading the .blend file`
  }
  if (log.readBlend.length === 0) {
    return 'Blender never reported reading the .blend file'
  }
  const other = log.readBlend.find(p => resolve(p) !== wanted)
  return other === undefined
    ? undefined
    : `Blender read "${other}" instead of "${wanted}"`
}

/** Every `Saved:` is a planned frame in the chunk dir, each exactly once. */
function savedReason (
  expect: ChunkExpectation, log: BlenderLog
): string | undefined {
  const byName = plannedNames(expect)
  const counts = new Map<number, number>()
  for (const { path } of log.saved) {
    const problem = misplaced(expect, byName, path)
    if (problem !== undefined) return problem
    const frame = byName.get(basename(path)) as number
    counts.set(frame, (counts.get(frame) ?? 0) + 1)
  }
  return duplicateReason(counts) ?? gapReason(expect.frames, counts)
}

function plannedNames (expect: ChunkExpectation): Map<string, number> {
  return new Map(expect.frames.map(f => [frameFileName(f, expect.format), f]))
}

function misplaced (
  expect: ChunkExpectation, byName: Map<string, number>, path: string
): string | undefined {
  if (dirname(resolve(path)) !== resolve(expect.chunkDir)) {
    return `Blender saved "${path}" outside the chunk directory`
  }
  if (!byName.has(basename(path))) {
    return `Blender saved "${basename(path)}", which is not a planned frame`
  }
  return undefined
}

function duplicateReason (counts: Map<number, number>): string | undefined {
  const twice = [...counts].filter(([, n]) => n > 1).map(([f]) => f)
  return twice.length === 0
    ? undefined
    : `frames saved more than once: ${twice.join(', ')}`
}

function gapReason (
  frames: number[], counts: Map<number, number>
): string | undefined {
  const missing = frames.filter(f => !counts.has(f))
  return missing.length === 0
    ? undefined
    : `Blender never saved frames ${missing.join(', ')}`
}

/** The render script reports its own end; without it, it did not finish. */
function scriptReason (log: BlenderLog): string | undefined {
  return log.markers.some(m => m.event === 'chunk-done')
    ? undefined
    : 'the render script did not report the chunk finished'
}

/** The dir holds exactly the planned frames, each a non-empty image. */
function filesReason (
  expect: ChunkExpectation, files: ChunkFile[]
): string | undefined {
  const planned = [...plannedNames(expect).keys()]
  const extra = files.find(f => !planned.includes(f.name) || !f.isFile)
  if (extra !== undefined) {
    return `unexpected "${extra.name}" in the chunk directory`
  }
  const missing = planned.find(name => !files.some(f => f.name === name))
  if (missing !== undefined) return `"${missing}" is not on disk`
  return badImageReason(expect.format, files)
}

function badImageReason (
  format: ImageFormat, files: ChunkFile[]
): string | undefined {
  const empty = files.find(f => f.size === 0)
  if (empty !== undefined) return `"${empty.name}" is empty`
  const bad = files.find(f => !f.hasImageSignature)
  return bad === undefined
    ? undefined
    : `"${bad.name}" is not a ${format} image`
}
