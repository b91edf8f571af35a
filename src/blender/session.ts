/**
 * Warm sessions: one Blender per job keeps the scene loaded and renders
 * chunk after chunk (scripts/blender/render_server.py), so that a chunk
 * no longer pays Blender's start-up and the scene's load, about 1 s each
 * (docs/performance.md).
 *
 * A session starts with the command line a fresh chunk gets, the server
 * script in place of render_chunk.py, and renders that chunk first: up to
 * there it is a fresh Blender. The server then says whether it stays warm
 * (not for a scene that simulates, whose frames depend on the frames
 * before them) and takes one chunk at a time on stdin. Every chunk is
 * judged as a fresh one is, on its own log: the session's start-up output
 * (`Read blend:`, load errors), then its own lines up to the server's
 * chunk-done or chunk-failed. A chunk that fails inside a live session
 * fails alone; a session that dies or hangs in a later chunk is killed and
 * that chunk renders again in a fresh Blender.
 *
 * Sandboxed, Blender may write only where bwrap bound it writable at
 * start. A worker's chunk dirs sit beside the job's files, which must stay
 * read-only, so a session gets a folder of its own beside them,
 * `session-<pid>-<n>/`, with a sub-folder per chunk whose files move into
 * the chunk dir once judged.
 */
import { link, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { WriteStream } from 'node:fs'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import { BLENDER_OUTPUT_PATTERN } from '../job/naming.js'
import { renderChunkArgv, scriptPath } from './argv.js'
import { CHUNK_LOG_NAME, listChunkFiles, prepareChunkDir } from './chunk-files.js'
import { BlenderLog } from './chunk-log.js'
import { judgeChunk, type ProcessOutcome } from './chunk-verdict.js'
import {
  chunkFailure, expectationOf, ProcessChunkRenderer, readablePaths,
  type ChunkRenderer, type ChunkRenderRequest, type ChunkRenderResult,
  type ProcessRendererOptions
} from './driver.js'
import type { BlenderInstall } from './install.js'
import { KILL_GRACE_MS } from './limits.js'
import { parseLogLine, type ChunkMarker } from './log-parser.js'
import {
  closeLog, lineHandler, openLog, outcomeOf, readLines, SilenceWatch,
  startBlender, type BlenderProcess, type ExecaOutcome
} from './process.js'
import { describeChunk, savedFrames } from './request.js'
import type { Sandbox } from './sandbox.js'

const log = logger('blender:session')

/**
 * Sessions kept at once: each holds a loaded scene in memory that the
 * next render may need, and a worker renders one chunk at a time.
 */
const MAX_SESSIONS = 1

type ServerMarker = ChunkMarker
  | { event: 'session', warm: boolean, reason: string | null }

type Stop = 'hung' | 'timedOut' | 'cancelled'

/** Keeps one Blender per .blend and settings; see the top of the file. */
export class SessionChunkRenderer implements ChunkRenderer {
  private readonly sessions = new Map<string, Session>()
  private readonly fresh: ProcessChunkRenderer
  /** .blend files whose scene was found to stay cold, told once. */
  private readonly cold = new Set<string>()
  /**
   * Chunk folders in the sessions' folders, and the folders of sessions
   * that ended: the caller was told of frames in them (onFrameSaved) and
   * may still be reading those, so they go when the next chunk starts.
   */
  private leftovers: string[] = []
  private started = 0

  constructor (
    private readonly blender: BlenderInstall,
    private readonly opts: ProcessRendererOptions = {}
  ) {
    this.fresh = new ProcessChunkRenderer(blender, opts)
  }

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    // The file's own Python can keep state between chunks (its modules,
    // the driver namespace) that nothing in the session can reset.
    if (req.allowScripts === true) return await this.fresh.render(req)
    const expect = expectationOf(req)
    await prepareChunkDir(expect.chunkDir)
    await this.sweep()
    const key = sessionKey(expect)
    const session = this.sessions.get(key)
    if (session === undefined) return await this.renderFirst(key, expect)
    // Busy with another chunk: not how a worker calls it, but allowed.
    if (session.busy) return await this.fresh.render(expect)
    return await this.renderWarm(session, expect)
  }

  async close (blendPath: string): Promise<void> {
    const path = resolve(blendPath)
    this.cold.delete(path)
    await Promise.all([...this.sessions.values()]
      .filter(s => s.blendPath === path).map(async s => { await this.end(s) }))
    await this.sweep()
  }

  async closeAll (): Promise<void> {
    this.cold.clear()
    await Promise.all([...this.sessions.values()].map(async s => { await this.end(s) }))
    await this.sweep()
  }

  /** Starts a session with this chunk, rendered as a fresh Blender would. */
  private async renderFirst (key: string, expect: ChunkRenderRequest): Promise<ChunkRenderResult> {
    await this.makeRoom()
    const outbox = join(dirname(expect.chunkDir), `session-${process.pid}-${++this.started}`)
    await mkdir(outbox)
    const chunk = await ChunkRun.open(expect, outbox)
    const subprocess = startBlender(this.blender, sessionArgv(expect, chunk.inner),
      { dir: outbox, stdin: 'pipe', sandbox: this.opts.sandbox, readable: readablePaths(expect) })
    const session = new Session(key, expect.blendPath, outbox, subprocess)
    this.sessions.set(key, session)
    log.debug('starting a warm Blender session', { pid: subprocess.pid, chunk: describeChunk(expect) })

    const { outcome, exited } = await session.follow(chunk.onLine, expect, this.opts.sandbox)
    const reason = await chunk.verdict(outcome)
    this.leave(session, chunk, exited)
    if (session.coldReason !== undefined && !this.cold.has(expect.blendPath)) {
      this.cold.add(expect.blendPath)
      log.info('scene renders in a fresh Blender per chunk', { blend: expect.blendPath, reason: session.coldReason })
    }
    return chunk.conclude(outcome, reason)
  }

  /** Renders a chunk in a live session, or in a fresh Blender if it dies. */
  private async renderWarm (session: Session, expect: ChunkRenderRequest): Promise<ChunkRenderResult> {
    const chunk = await ChunkRun.open(expect, session.outbox)
    const number = session.chunks + 1
    chunk.replay(session, number)
    session.send({ chunk: number, frames: expect.frames, output: join(chunk.inner, BLENDER_OUTPUT_PATTERN) })

    const { outcome, exited } = await session.follow(chunk.onLine, expect, this.opts.sandbox)
    const reason = await chunk.verdict(outcome)
    this.leave(session, chunk, exited)
    if (!exited || outcome.cancelled || outcome.timedOut) return chunk.conclude(outcome, reason)
    log.warn('warm Blender session died, falling back to a fresh process',
      { chunk: describeChunk(expect), reason })
    await rm(expect.chunkDir, { recursive: true, force: true })
    return await this.fresh.render(expect)
  }

  /** Ends idle sessions until one more fits, the oldest first. */
  private async makeRoom (): Promise<void> {
    const idle = [...this.sessions.values()].filter(s => !s.busy)
    const excess = this.sessions.size + 1 - MAX_SESSIONS
    await Promise.all(idle.slice(0, Math.max(0, excess)).map(async s => { await this.end(s) }))
  }

  private async end (session: Session): Promise<void> {
    await session.quit()
    this.forget(session)
    await rm(session.outbox, { recursive: true, force: true })
  }

  /** A chunk's folder, or its session's if that exited, goes next sweep. */
  private leave (session: Session, chunk: ChunkRun, exited: boolean): void {
    if (exited) this.forget(session)
    this.leftovers.push(exited ? session.outbox : chunk.inner)
  }

  private forget (session: Session): void {
    if (this.sessions.get(session.key) === session) this.sessions.delete(session.key)
  }

  private async sweep (): Promise<void> {
    const dirs = this.leftovers.splice(0)
    await Promise.all(dirs.map(async dir => { await rm(dir, { recursive: true, force: true }) }))
  }
}

/** One running Blender and the chunk it is rendering, if any. */
class Session {
  /** Blender's output up to the server's session marker: its start-up. */
  readonly header: string[] = []
  /** Why the server did not stay warm; undefined while it does. */
  coldReason?: string
  chunks = 0
  busy = false
  private warm = false
  private loaded = false
  private current?: (line: string) => void
  private chunkEnded?: () => void
  private stopped?: Stop
  private gone = false
  readonly exited: Promise<ExecaOutcome>

  constructor (
    readonly key: string, readonly blendPath: string, readonly outbox: string,
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

/** One chunk in a session: its folder in the session's, its log, its verdict. */
class ChunkRun {
  readonly onLine: (line: string) => void

  private constructor (
    private readonly expect: ChunkRenderRequest, readonly inner: string,
    private readonly outbox: string, private readonly file: WriteStream,
    private readonly blenderLog: BlenderLog
  ) {
    this.onLine = lineHandler({ ...expect, chunkDir: inner }, blenderLog, file)
  }

  static async open (expect: ChunkRenderRequest, outbox: string): Promise<ChunkRun> {
    const inner = join(outbox, basename(expect.chunkDir))
    await mkdir(inner)
    const file = openLog(join(expect.chunkDir, CHUNK_LOG_NAME))
    return new ChunkRun(expect, inner, outbox, file, new BlenderLog())
  }

  /** What a fresh Blender would have printed before this chunk: the session's start-up. */
  replay (session: Session, number: number): void {
    for (const line of session.header) this.onLine(line)
    this.onLine('blendnet: the lines above are the start-up of warm Blender ' +
      `session ${session.pid ?? '?'}; its chunk ${number} follows`)
  }

  /** The chunk's frames, or its failure thrown, once judged. */
  conclude (outcome: ProcessOutcome, reason: string | undefined): ChunkRenderResult {
    const logPath = join(this.expect.chunkDir, CHUNK_LOG_NAME)
    if (reason !== undefined) throw chunkFailure(this.expect, { outcome, logPath }, this.blenderLog, reason)
    return { frames: savedFrames(this.expect), logPath, warnings: this.blenderLog.warnings }
  }

  /**
   * Why the chunk failed, or undefined. The chunk dir then holds what
   * Blender wrote for it, as after a fresh run: hard links, the files
   * staying where onFrameSaved said they were until the next sweep.
   */
  async verdict (outcome: ProcessOutcome): Promise<string | undefined> {
    await closeLog(this.file)
    const stray = await this.removeStrays()
    const files = await listChunkFiles(this.inner, this.expect.format)
    const reason = stray ?? judgeChunk({ ...this.expect, chunkDir: this.inner }, outcome, this.blenderLog, files)
    for (const name of await readdir(this.inner)) {
      const [from, to] = [join(this.inner, name), join(this.expect.chunkDir, name)]
      await link(from, to).catch(async () => { await rename(from, to) })
    }
    return reason
  }

  /**
   * Anything written beside the chunk's folder during the chunk (a
   * relative output path lands in the session's folder), or a log of
   * Blender's own in it: a fresh run would have failed on it too.
   */
  private async removeStrays (): Promise<string | undefined> {
    const beside = (await readdir(this.outbox)).filter(n => n !== basename(this.inner))
    for (const name of beside) await rm(join(this.outbox, name), { recursive: true, force: true })
    if (beside.length > 0) return `unexpected "${beside[0]}" beside the chunk directory`
    const inside = await readdir(this.inner)
    if (!inside.includes(CHUNK_LOG_NAME)) return undefined
    await rm(join(this.inner, CHUNK_LOG_NAME), { force: true })
    return `unexpected "${CHUNK_LOG_NAME}" in the chunk directory`
  }
}

/** A fresh chunk's command line with the server in render_chunk.py's place. */
function sessionArgv (expect: ChunkRenderRequest, inner: string): string[] {
  const chunkScript = scriptPath('render_chunk.py')
  return renderChunkArgv({ ...expect, chunkDir: inner })
    .map(arg => arg === chunkScript ? scriptPath('render_server.py') : arg)
}

/**
 * What must match for a chunk to render in an existing session; the
 * chunk dir's folder too, as the session's folder sits beside the chunk
 * dirs (its files are hard-linked into them).
 */
function sessionKey (req: ChunkRenderRequest): string {
  return JSON.stringify([req.blendPath, req.scene, req.format,
    req.resolutionPercentage, req.engine, req.samples, req.device,
    req.pathMap, req.allowMissing, dirname(req.chunkDir)])
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
