/**
 * Tells the coordinator what Blender is doing on the chunk (`frame 13,
 * Sample 12/64`) while it renders, for the artist's progress display.
 * Reads the chunk's log lines, sends the latest progress at most once per
 * PROGRESS_INTERVAL_MS and only when it changed, one report at a time.
 * Display only: a report that fails is dropped, and after a failure (an
 * older coordinator without the protocol, a broken link) the chunk sends
 * no more, so progress never costs the render anything.
 */
import { parseLogLine } from '../blender/log-parser.js'
import { parseRenderProgress, type RenderProgress } from '../blender/render-progress.js'
import { PROGRESS_INTERVAL_MS } from '../common/constants.js'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'

const log = logger('worker')

export type SendProgress = (progress: RenderProgress) => Promise<void>

export class ProgressReporter {
  private latest?: RenderProgress
  private sent = ''
  private lastSentAt = 0
  private timer?: NodeJS.Timeout
  private sending = false
  private stopped = false

  constructor (private readonly send: SendProgress,
    private readonly fields: Record<string, string | number> = {},
    private readonly intervalMs = PROGRESS_INTERVAL_MS) {}

  /** For the renderer's onLogLine. */
  readonly onLogLine = (line: string): void => {
    const progress = parseRenderProgress(line) ?? frameStart(line)
    if (progress === undefined) return
    this.latest = progress
    this.schedule()
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private schedule (): void {
    if (this.stopped || this.sending || this.timer !== undefined) return
    const wait = Math.max(0, this.lastSentAt + this.intervalMs - Date.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.flush()
    }, wait)
  }

  private async flush (): Promise<void> {
    const progress = this.latest
    const key = JSON.stringify(progress)
    if (progress === undefined || key === this.sent || this.stopped) return
    this.sending = true
    this.sent = key
    this.lastSentAt = Date.now()
    try {
      await this.send(progress)
    } catch (err) {
      log.debug('progress report not sent; sending no more for this chunk', { ...this.fields, err: messageOf(err) })
      this.stop()
    } finally {
      this.sending = false
    }
    // Progress that came in while this report was on its way.
    this.schedule()
  }
}

/** render_chunk.py's `frame-start` marker: a frame begins, no samples yet. */
function frameStart (line: string): RenderProgress | undefined {
  const event = parseLogLine(line)
  if (event?.kind !== 'marker' || event.marker.event !== 'frame-start') return undefined
  return { frame: event.marker.frame, sample: 0, samples: 0, status: 'starting' }
}
