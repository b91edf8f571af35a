/**
 * `submit`'s live view on an interactive terminal: a few lines redrawn in
 * place (log-update) with frames done of total, an ETA and one line per
 * busy worker with Blender's own progress; failures, workers joining and
 * leaving, and warnings from the log print above it and stay.
 *
 *   frames 12/48 done (25%) · 1 failed · ETA 1m20s · 40s elapsed
 *   [██████████░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░]
 *   …a1b2c3  chunk 4  frame 13  Sample 12/64
 *   …d4e5f6  idle
 */
import { createLogUpdate } from 'log-update'
import { formatDuration } from '../common/duration.js'
import { setLogSink, type LogLevel } from '../common/log.js'
import type { JobSummary, WorkerRow } from '../progress/job-view.js'
import { printable } from './console.js'

export interface LiveViewInput {
  summary: JobSummary
  workers: WorkerRow[]
}

/** At most this many worker lines; the rest are counted. */
const MAX_WORKER_LINES = 12
const BAR_WIDTH = 50
/** Redraws at most this often: a terminal need not show every sample. */
const REDRAW_MS = 100

/** The live lines for a terminal `columns` wide. Pure: tested as text. */
export function renderLiveView (input: LiveViewInput, columns = 80): string {
  const { summary, workers } = input
  const lines = [headline(summary), bar(summary, Math.min(BAR_WIDTH, columns - 2))]
  const shown = workers.filter(w => w.present || w.chunk !== undefined)
  for (const worker of shown.slice(0, MAX_WORKER_LINES)) lines.push(workerLine(worker))
  if (shown.length > MAX_WORKER_LINES) lines.push(`… and ${shown.length - MAX_WORKER_LINES} more workers`)
  if (shown.length === 0) lines.push('no worker yet')
  return lines.map(line => fit(line, columns)).join('\n')
}

function headline (s: JobSummary): string {
  const percent = s.total === 0 ? 100 : Math.floor(s.done * 100 / s.total)
  const parts = [`frames ${s.done}/${s.total} done (${percent}%)`]
  if (s.failed > 0) parts.push(`${s.failed} failed`)
  if (s.finished !== undefined) parts.push(s.finished.succeeded ? 'finished' : 'stopped')
  else parts.push(s.etaMs === undefined ? 'ETA after the first frame' : `ETA ${formatDuration(s.etaMs)}`)
  parts.push(`${formatDuration(s.elapsedMs)} elapsed`)
  return parts.join(' · ')
}

function bar (s: JobSummary, width: number): string {
  if (width < 4) return ''
  const inner = width - 2
  const filled = s.total === 0 ? inner : Math.floor(s.done * inner / s.total)
  const failed = s.total === 0 ? 0 : Math.ceil(s.failed * inner / s.total)
  const rest = Math.max(0, inner - filled - failed)
  return `[${'█'.repeat(filled)}${'×'.repeat(Math.min(failed, inner - filled))}${'░'.repeat(rest)}]`
}

function workerLine (w: WorkerRow): string {
  const who = `…${w.peer.slice(-6)}`
  const speed = w.secondsPerFrame === undefined ? '' : `  ${w.secondsPerFrame.toFixed(1)} s/frame`
  if (w.chunk === undefined) return `${who}  idle  ${w.framesDone} done${speed}`
  const at = w.progress === undefined ? '' : `  frame ${w.progress.frame}  ${printable(w.progress.status, 60)}`
  return `${who}  chunk ${w.chunk}${at}${speed}`
}

/** One terminal line: longer ones would wrap and break the redraw. */
function fit (line: string, columns: number): string {
  const max = Math.max(10, columns - 1)
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

/**
 * Owns the terminal while the job runs: the live lines at the bottom,
 * lines that must stay (failures, log warnings) printed above them.
 * The operator log's info lines are left out unless BLENDNET_LOG asks
 * for them: they would scroll the view away.
 */
export class LiveProgress {
  private readonly update = createLogUpdate(process.stdout)
  private timer?: NodeJS.Timeout
  private dirty = false
  private closed = false
  private readonly logsToo = process.stderr.isTTY === true

  constructor (private readonly read: () => LiveViewInput) {
    if (this.logsToo) setLogSink((level, line) => { this.log(level, line) })
    // The ETA and elapsed time move even when no event comes.
    this.timer = setInterval(() => { this.draw() }, 1000)
  }

  /** Something changed: redraw soon. */
  changed (): void {
    if (this.dirty || this.closed) return
    this.dirty = true
    setTimeout(() => { this.draw() }, REDRAW_MS)
  }

  /** A line that stays above the live view. */
  persist (line: string): void {
    if (this.closed) { process.stdout.write(line + '\n'); return }
    this.update.persist(line)
    this.draw()
  }

  /** Draws the last state and leaves it on screen. */
  close (): void {
    if (this.closed) return
    this.draw()
    this.closed = true
    clearInterval(this.timer)
    this.update.done()
    if (this.logsToo) setLogSink(undefined)
  }

  private draw (): void {
    this.dirty = false
    if (this.closed) return
    this.update(renderLiveView(this.read(), process.stdout.columns ?? 80))
  }

  private log (level: LogLevel, line: string): void {
    const quiet = process.env.BLENDNET_LOG === undefined && (level === 'info' || level === 'debug')
    if (!quiet) this.persist(line)
  }
}
