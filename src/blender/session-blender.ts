/**
 * One Blender running render_server.py (a warm session, see session.ts):
 * its output, split into the start-up (replayed to each later chunk's
 * log) and the chunk being rendered; its end, however it comes.
 */
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import type { ChunkRenderRequest } from './driver.js'
import type { ProcessOutcome } from './chunk-verdict.js'
import { KILL_GRACE_MS } from './limits.js'
import { parseLogLine, type ChunkMarker } from './log-parser.js'
import {
  outcomeOf, readLines, SilenceWatch, type BlenderProcess, type ExecaOutcome
} from './process.js'
import type { Sandbox } from './sandbox.js'

const log = logger('blender:session')

type ServerMarker = ChunkMarker
  | { event: 'session', warm: boolean, reason: string | null }
  | { event: 'standby-declined', reason: string }

type Stop = 'hung' | 'timedOut' | 'cancelled'

/** One running Blender and the chunk it is rendering, if any. */
export class Session {
  /** Blender's output up to the server's session marker: its start-up. */
  readonly header: string[] = []
  /** Why the server did not stay warm; undefined while it does. */
  coldReason?: string
  /** Why a standby Blender would not take its first chunk (standby.ts). */
  declined?: string
  chunks = 0
  busy = false
  private warm = false
  /** The server said it loaded the scene (its session marker). */
  loaded = false
  private current?: (line: string) => void
  private chunkEnded?: () => void
  private stopped?: Stop
  private gone = false
  readonly exited: Promise<ExecaOutcome>

  /** `key` and `blendPath` are empty for a standby until its job comes. */
  constructor (
    public key: string, public blendPath: string, readonly outbox: string,
    private readonly subprocess: BlenderProcess
  ) {
    // Writing to a dead session fails; its exit tells what happened.
    subprocess.stdin?.on('error', () => {})
    this.exited = readLines(subprocess, line => { this.onLine(line) })
      .catch((err: unknown) => {
        log.error("reading Blender's output failed", { pid: this.pid, error: messageOf(err) })
      })
      .then(async () => await subprocess)
    void this.exited.then(() => { this.gone = true })
  }

  get pid (): number | undefined {
    return this.subprocess.pid
  }

  get alive (): boolean {
    return !this.gone
  }

  assign (key: string, blendPath: string): void {
    this.key = key
    this.blendPath = blendPath
  }

  send (request: object): void {
    this.subprocess.stdin?.write(JSON.stringify(request) + '\n')
  }

  /**
   * Feeds Blender's lines to `onLine` until the chunk ends: the server
   * reports it done or failed (warm), or Blender exits. Silence, the time
   * limit and a cancel stop Blender as they stop a fresh one.
   */
  async follow (
    onLine: (line: string) => void, opts: ChunkRenderRequest, sandbox?: Sandbox
  ): Promise<{ outcome: ProcessOutcome, exited: boolean }> {
    this.chunks++
    this.busy = true
    this.stopped = undefined
    const silence = new SilenceWatch(opts.hangTimeoutMs ?? 0, () => { this.stop('hung') })
    const timer = opts.timeoutMs === undefined
      ? undefined
      : setTimeout(() => { this.stop('timedOut') }, opts.timeoutMs)
    const onAbort = (): void => { this.stop('cancelled') }
    opts.signal?.addEventListener('abort', onAbort)
    if (opts.signal?.aborted === true) onAbort()
    const reported = new Promise<undefined>(resolve => { this.chunkEnded = () => { resolve(undefined) } })
    this.current = line => { silence.heard(); onLine(line) }
    try {
      const ended = await Promise.race([reported, this.exited])
      if (ended === undefined && this.stopped === undefined) {
        return { outcome: aliveOutcome(opts), exited: false }
      }
      const outcome = outcomeOf(await this.exited, { ...opts, sandbox }, this.stopped === 'hung')
      return {
        outcome: { ...outcome, timedOut: this.stopped === 'timedOut', cancelled: this.stopped === 'cancelled' },
        exited: true
      }
    } finally {
      silence.stop()
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      this.current = undefined
      this.chunkEnded = undefined
      this.busy = false
    }
  }

  /** Ends the session: asks an idle one to quit, stops a busy one. */
  async quit (): Promise<void> {
    if (this.gone) return
    if (this.busy) this.stop('cancelled')
    else {
      this.send({ quit: true })
      this.subprocess.stdin?.end()
    }
    const timer = setTimeout(() => { this.subprocess.kill('SIGKILL') }, KILL_GRACE_MS)
    await this.exited
    clearTimeout(timer)
  }

  /** SIGTERM, then SIGKILL after KILL_GRACE_MS (execa's forceKillAfterDelay). */
  private stop (why: Stop): void {
    if (this.stopped !== undefined) return
    this.stopped = why
    if (why === 'hung') log.warn('Blender hung, stopping its session', { pid: this.pid, dir: this.outbox })
    if (!this.gone) this.subprocess.kill('SIGTERM')
  }

  private onLine (line: string): void {
    const event = parseLogLine(line)
    const marker = event?.kind === 'marker' ? event.marker as ServerMarker : undefined
    if (!this.loaded) this.header.push(line)
    if (marker?.event === 'session') {
      this.loaded = true
      this.warm = marker.warm
      this.coldReason = marker.warm ? undefined : marker.reason ?? 'unknown'
    }
    if (marker?.event === 'standby-declined') this.declined = marker.reason
    if (this.current === undefined) {
      log.debug('Blender between chunks', { pid: this.pid, line })
      return
    }
    this.current(line)
    // A fresh-like run (not warm, or a Blender that never said) ends at exit.
    if (this.warm && (marker?.event === 'chunk-done' || marker?.event === 'chunk-failed')) {
      this.chunkEnded?.()
    }
  }
}

/** A chunk that ended inside a running Blender is judged as a clean exit. */
function aliveOutcome (opts: ChunkRenderRequest): ProcessOutcome {
  return {
    exitCode: 0,
    signal: undefined,
    timedOut: false,
    cancelled: false,
    hung: false,
    timeoutMs: opts.timeoutMs,
    hangTimeoutMs: opts.hangTimeoutMs
  }
}
