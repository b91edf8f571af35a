/**
 * Reading Blender's output one line at a time. Blender's exit code says
 * little (it exits 0 after most failures, cases/README.md), so the
 * driver judges a chunk from what these lines report.
 */

/** `Read blend: /abs/scene.blend` (3.4) or `Read blend: "/abs/..."`. */
const READ_BLEND = /^Read blend: (?:"(.*)"|(.*))$/

/** `Fra:12 Mem:8.49M (Peak 8.56M) | Time:00:00.05 | ... Sample 1/4`. */
const PROGRESS = /^Fra:(-?\d+)\s/

/**
 * `Saved: '/abs/frame_0001.png'` from the main output; File Output
 * nodes print `Saved: /abs/path` without the quotes.
 */
const SAVED = /^Saved: (?:'(.*)'|(.*))$/

/** `Error: Cannot render, no camera`, `Error: Failed to read ...`. */
const ERROR = /^Error: (.*)$/

/**
 * The start of a Python traceback: `Error: Python: Traceback (most
 * recent call last):` from a failing script, or a bare `Traceback ...`
 * from a handler, which `--python-exit-code` never covers (case B04).
 */
const TRACEBACK = /^(?:Error: Python: )?Traceback \(most recent call last\):/

/**
 * The last line of a traceback, naming the exception:
 * `RuntimeError: Error: Cannot render, no camera`, `KeyboardInterrupt`.
 */
const EXCEPTION =
  /^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))(?:: (.*))?$/

/** `Can't find scene: 'night' in file: '/abs/x.blend'`; renders another. */
const SCENE_MISSING = /^Can't find scene: '(.*)' in file/

/** `... File written by newer Blender binary (401.1), expect loss ...`. */
const NEWER_FILE = /File written by newer Blender binary(?: \((\d+)\.(\d+)\))?/

/** `skipping existing frame "/abs/f.png"`: an old file stood for a frame. */
const SKIPPED_EXISTING = /[Ss]kipping existing frame "(.*)"/

/** `Malloc returns null: len=...` or `std::bad_alloc`: out of memory. */
const OUT_OF_MEMORY = /Malloc returns null|std::bad_alloc/

/** `Error in PyDriver: ...` and `restricted access disallows name ...`. */
const DRIVER_FAILED = /^Error in PyDriver|restricted access disallows/

/** `Blender quit`, printed at the end, also after most failures. */
const QUIT = /^Blender quit$/

/**
 * Errors that do not spoil a render: `Error: Not freed memory blocks: 2,
 * ...` (a leak report at exit), and `Error: Unable to pack file, source
 * path '...' not found` (an absolute font path that is missing while the
 * file loads, before render_chunk.py remaps it; the script itself fails
 * the chunk if the font is still missing after remapping).
 */
const HARMLESS_ERROR = /^Not freed memory blocks|^Unable to pack file, source path/

/** `blendnet-chunk: {"event": ...}`, printed by render_chunk.py. */
const CHUNK_MARKER = /^blendnet-chunk: (\{.*\})$/

export type ChunkMarker =
  | { event: 'frame-start', frame: number, path: string }
  | { event: 'frame-done', frame: number, path: string }
  | { event: 'chunk-done', frames: number }
  | { event: 'chunk-failed', reason: string }

export type LogEvent =
  | { kind: 'read-blend', path: string }
  | { kind: 'progress', frame: number }
  | { kind: 'saved', path: string }
  | { kind: 'error', message: string }
  | { kind: 'traceback' }
  | { kind: 'scene-missing', scene: string }
  | { kind: 'newer-file', line: string }
  | { kind: 'skipped-existing', path: string }
  | { kind: 'out-of-memory', line: string }
  | { kind: 'driver-failed', line: string }
  | { kind: 'quit' }
  | { kind: 'marker', marker: ChunkMarker }

/** What one line of Blender's output says, if it says anything known. */
export function parseLogLine (line: string): LogEvent | undefined {
  for (const parse of LINE_PARSERS) {
    const event = parse(line)
    if (event !== undefined) return event
  }
  return undefined
}

type LineParser = (line: string) => LogEvent | undefined

/** Tried in order: a traceback start also looks like an `Error:` line. */
const LINE_PARSERS: LineParser[] = [
  line => match(READ_BLEND, line, m =>
    ({ kind: 'read-blend', path: m[1] ?? m[2] })),
  line => match(PROGRESS, line, m =>
    ({ kind: 'progress', frame: Number(m[1]) })),
  line => match(SAVED, line, m => ({ kind: 'saved', path: m[1] ?? m[2] })),
  line => match(TRACEBACK, line, () => ({ kind: 'traceback' })),
  line => match(ERROR, line, m => HARMLESS_ERROR.test(m[1])
    ? undefined
    : { kind: 'error', message: m[1] }),
  line => match(SCENE_MISSING, line, m =>
    ({ kind: 'scene-missing', scene: m[1] })),
  line => match(NEWER_FILE, line, () => ({ kind: 'newer-file', line })),
  line => match(SKIPPED_EXISTING, line, m =>
    ({ kind: 'skipped-existing', path: m[1] })),
  line => match(OUT_OF_MEMORY, line, () => ({ kind: 'out-of-memory', line })),
  line => match(DRIVER_FAILED, line, () => ({ kind: 'driver-failed', line })),
  line => match(QUIT, line, () => ({ kind: 'quit' })),
  line => match(CHUNK_MARKER, line, m => markerEvent(m[1]))
]

function match (
  pattern: RegExp, line: string,
  build: (m: RegExpExecArray) => LogEvent | undefined
): LogEvent | undefined {
  const m = pattern.exec(line)
  return m === null ? undefined : build(m)
}

function markerEvent (json: string): LogEvent | undefined {
  try {
    const marker = JSON.parse(json) as ChunkMarker
    return typeof marker.event === 'string'
      ? { kind: 'marker', marker }
      : undefined
  } catch {
    return undefined
  }
}

/** The exception named by the last line of a traceback, if this is it. */
export function parseExceptionLine (line: string): string | undefined {
  const m = EXCEPTION.exec(line)
  if (m === null) return undefined
  return m[2] === undefined ? m[1] : `${m[1]}: ${m[2]}`
}

/**
 * Blender's words for a failure without the file paths it quotes, and
 * for a file it cannot read, just the cause:
 *   Failed to read blend file '/x.blend': Missing DNA block
 *     → Missing DNA block
 *   RuntimeError: Error: Cannot render, no camera
 *     → Cannot render, no camera
 *   Can't find scene: 'night' in file: '/x.blend'
 *     → Can't find scene: 'night'
 */
export function blenderWords (message: string): string {
  const readFailure = READ_FAILURE.exec(message)
  if (readFailure !== null) {
    return readFailure[1] ?? readFailure[2] ?? readFailure[3]
  }

  return message
    .replace(OPERATOR_REPORT, '')
    .replace(/^Error: /, '')
    .replace(QUOTED_PATH, '')
    .trim()
}

/**
 * `RuntimeError: Error: ...`: an operator's report raised into Python.
 * Only Blender's words count there; other exceptions keep their type.
 */
const OPERATOR_REPORT = /^RuntimeError: (?=Error: )/

/** ` in file: '/abs/x.blend'`, `'/abs/f.png'`: paths, not words. */
const QUOTED_PATH = /\s*(?:in file:?\s*)?'[^']*[/\\][^']*'/g

/**
 * Blender's ways of saying it cannot read a file:
 *   Failed to read blend file '/x.blend': Missing DNA block
 *   Failed to read blend file '/x.blend', not a blend file
 *   File format is not supported in file '/x.blend'
 *   Cannot read file '/x.blend': No such file or directory
 */
const READ_FAILURE = new RegExp(
  "^(?:Failed to read blend file '.*'[:,] (.+)|" +
  "(File format is not supported) in file '.*'|" +
  "Cannot read file '.*': (.+))$")

/** True when an `Error:` message is about reading the .blend file. */
export function isReadFailure (message: string): boolean {
  return READ_FAILURE.test(message)
}
