/**
 * The facts of one Blender run, gathered from its output as it streams
 * in: which file it read, what it saved, what it complained about and in
 * which order. The verdict on a chunk is taken from these facts.
 */
import { LOG_TAIL_LINES } from './limits.js'
import {
  parseExceptionLine, parseLogLine, type ChunkMarker, type LogEvent
} from './log-parser.js'

export interface SavedLine {
  path: string
  /** Saved before any `Read blend:`: the startup scene, not the job's. */
  beforeReadBlend: boolean
}

export class BlenderLog {
  readonly readBlend: string[] = []
  readonly saved: SavedLine[] = []
  /** `Error:` messages, without the prefix, in order. */
  readonly errors: string[] = []
  /** Last lines of Python tracebacks: `RuntimeError: Error: ...`. */
  readonly exceptions: string[] = []
  /** Lines that spoil a render although Blender does not call them errors. */
  readonly problems: string[] = []
  /** Worth showing the operator; they do not fail the chunk. */
  readonly warnings: string[] = []
  readonly markers: ChunkMarker[] = []
  tracebacks = 0
  lastProgress: string | undefined
  quit = false

  private readonly tail: string[] = []
  private inTraceback = false

  /** Takes in one line of output and returns what it said, if known. */
  add (line: string): LogEvent | undefined {
    this.keepInTail(line)
    if (this.inTraceback && this.readTraceback(line)) return undefined

    const event = parseLogLine(line)
    if (event !== undefined) this.record(event, line)
    return event
  }

  /** The last lines of output, for failure reports. */
  get logTail (): string[] {
    return [...this.tail]
  }

  private keepInTail (line: string): void {
    this.tail.push(line)
    if (this.tail.length > LOG_TAIL_LINES) this.tail.shift()
  }

  /** True while the line still belongs to the traceback being read. */
  private readTraceback (line: string): boolean {
    if (/^\s/.test(line) || line === '') return true
    this.inTraceback = false

    const exception = parseExceptionLine(line)
    if (exception === undefined) return false
    this.exceptions.push(exception)
    return true
  }

  private record (event: LogEvent, line: string): void {
    switch (event.kind) {
      case 'read-blend': this.readBlend.push(event.path); break
      case 'progress': this.lastProgress = line; break
      case 'saved': this.recordSaved(event.path); break
      case 'error': this.errors.push(event.message); break
      case 'traceback': this.tracebacks++; this.inTraceback = true; break
      case 'scene-missing':
        this.problems.push(`Can't find scene '${event.scene}'`); break
      case 'newer-file':
      case 'out-of-memory': this.problems.push(line.trim()); break
      case 'skipped-existing':
        this.problems.push(`skipped existing frame "${event.path}"`); break
      case 'driver-failed': this.warnings.push(line.trim()); break
      case 'quit': this.quit = true; break
      case 'marker': this.markers.push(event.marker); break
    }
  }

  private recordSaved (path: string): void {
    const beforeReadBlend = this.readBlend.length === 0
    this.saved.push({ path, beforeReadBlend })
  }
}
