/**
 * Where `submit` shows its job's progress: every coordinator event goes
 * to one JobView, and from it to whichever outputs the flags ask for:
 *
 * - an interactive terminal: the live view (live-progress.ts);
 * - otherwise: one plain line per event (progress.ts), as in a log;
 * - `--json`: one JSON object per line on stdout (json-events.ts), the
 *   human lines then on stderr;
 * - `--dashboard`: a live page on 127.0.0.1 (dashboard/server.ts).
 */
import { UsageError } from '../common/errors.js'
import type { JobEvent, JobOutcome } from '../coordinator/events.js'
import { DashboardServer } from '../dashboard/server.js'
import { JobView } from '../progress/job-view.js'
import { stringFlag, type Options, type Parsed } from './args.js'
import { say, sayOnStderr } from './console.js'
import { JsonEvents, type JobStartedEvent } from './json-events.js'
import { LiveProgress } from './live-progress.js'
import { describeEvent } from './progress.js'

export const PROGRESS_OPTIONS: Options = {
  json: { type: 'boolean' },
  dashboard: { type: 'boolean' },
  'dashboard-port': { type: 'string' },
  'dashboard-stay': { type: 'boolean' }
}

export const PROGRESS_HELP = `  --json                   one JSON event per line on stdout, for scripts
                           (docs/progress.md); other output goes to stderr
  --dashboard              serve a live page of the job on 127.0.0.1 and
                           print its address
  --dashboard-port <port>  the dashboard's port (implies --dashboard;
                           default 0: any free port)
  --dashboard-stay         keep serving the dashboard after the job ends,
                           until Ctrl-C (the exit code is still the job's)
`

export interface ProgressFlags {
  json: boolean
  /** The dashboard's port, when it is asked for. */
  dashboardPort?: number
  /** Serve the final state after the job ends, until interrupted. */
  dashboardStay: boolean
}

export function progressFlags (parsed: Parsed): ProgressFlags {
  const portText = stringFlag(parsed, 'dashboard-port')
  const dashboardStay = parsed.values['dashboard-stay'] === true
  let dashboardPort = parsed.values.dashboard === true || dashboardStay ? 0 : undefined
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
      throw new UsageError(`--dashboard-port must be a port number from 0 to 65535, not "${portText}"`)
    }
    dashboardPort = Number(portText)
  }
  return { json: parsed.values.json === true, dashboardPort, dashboardStay }
}

/** Lines that stay above the live view; the rest it shows in place. */
const LASTING: ReadonlySet<JobEvent['type']> = new Set([
  'waiting-for-workers', 'worker-joined', 'worker-left', 'frame-rejected',
  'chunk-failed', 'lease-expired', 'chunk-released'
])

export class SubmitProgress {
  private view?: JobView
  private readonly json?: JsonEvents
  private live?: LiveProgress
  private dashboard?: DashboardServer

  constructor (private readonly flags: ProgressFlags) {
    if (flags.json) {
      sayOnStderr()
      this.json = new JsonEvents()
    }
  }

  /**
   * The job is planned: the dashboard starts (when asked for and there is
   * something to render) and `--json` says `job-started`.
   */
  async start (started: Omit<JobStartedEvent, 'dashboard'>): Promise<void> {
    this.view = new JobView({
      jobId: started.jobId,
      scene: started.scene,
      format: started.format,
      frames: started.frames,
      alreadyDone: new Set(started.alreadyDone)
    })
    const left = started.frames.length - started.alreadyDone.length
    if (this.flags.dashboardPort !== undefined && left > 0) {
      this.dashboard = new DashboardServer({ view: this.view, outputDir: started.output, port: this.flags.dashboardPort })
      await this.dashboard.start()
      say(`dashboard: ${this.dashboard.url}`)
    }
    this.json?.jobStarted({ ...started, dashboard: this.dashboard?.url })
  }

  /** From here on an interactive terminal shows the live view. */
  showLive (): void {
    const view = this.view
    // A terminal of no width (some CI ptys) cannot hold lines in place.
    const tty = process.stdout.isTTY === true && process.env.TERM !== 'dumb' && (process.stdout.columns ?? 0) > 0
    if (view === undefined || this.json !== undefined || !tty) return
    this.live = new LiveProgress(() => ({ summary: view.summary(), workers: view.workers() }))
  }

  /** For the coordinator's onEvent. */
  readonly onEvent = (event: JobEvent): void => {
    const changed = this.view?.apply(event) ?? []
    this.dashboard?.changed(changed)
    if (this.json !== undefined) {
      this.json.event(event)
      return
    }
    const line = describeEvent(event)
    if (this.live === undefined) {
      if (line !== undefined) say(line)
    } else {
      if (line !== undefined && LASTING.has(event.type)) this.live.persist(line)
      this.live.changed()
    }
  }

  /** The job ended: the live view stops, `--json` says `job-finished`. */
  finish (outcome: JobOutcome, elapsedMs: number, interrupted?: string): void {
    const changed = this.view?.finish(outcome) ?? []
    this.dashboard?.changed(changed)
    this.live?.close()
    this.live = undefined
    this.json?.jobFinished(outcome, elapsedMs, interrupted)
  }

  /**
   * With --dashboard-stay, serves the job's final state until `onStop`'s
   * callback is called (Ctrl-C).
   */
  async stayUp (onStop: (stop: () => void) => void): Promise<void> {
    if (!this.flags.dashboardStay || this.dashboard === undefined) return
    say(`the dashboard stays up at ${this.dashboard.url} until Ctrl-C`)
    await new Promise<void>((resolve) => { onStop(resolve) })
  }

  async close (): Promise<void> {
    this.live?.close()
    await this.dashboard?.close()
  }
}
