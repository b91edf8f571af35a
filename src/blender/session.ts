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
 * A job's first session may also be a standby Blender, started before
 * the job was known and handed the file by its first chunk (standby.ts).
 *
 * Sandboxed, Blender may write only where bwrap bound it writable at
 * start. A worker's chunk dirs sit beside the job's files, which must stay
 * read-only, so a session gets a folder of its own beside them,
 * `session-<pid>-<n>/`, with a sub-folder per chunk whose files move into
 * the chunk dir once judged.
 */
import { mkdir, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { logger } from '../common/log.js'
import { BLENDER_OUTPUT_PATTERN } from '../job/naming.js'
import { renderChunkArgv, scriptPath } from './argv.js'
import { prepareChunkDir } from './chunk-files.js'
import { ChunkRun } from './chunk-run.js'
import type { ProcessOutcome } from './chunk-verdict.js'
import {
  expectationOf, ProcessChunkRenderer, readablePaths,
  type ChunkRenderer, type ChunkRenderRequest, type ChunkRenderResult,
  type ProcessRendererOptions
} from './driver.js'
import type { BlenderInstall } from './install.js'
import { startBlender } from './process.js'
import { describeChunk } from './request.js'
import { Session } from './session-blender.js'
import { isStandbyOutbox, removeOutbox, Standby } from './standby.js'

const log = logger('blender:session')

/**
 * Sessions kept at once: each holds a loaded scene in memory that the
 * next render may need, and a worker renders one chunk at a time.
 */
const MAX_SESSIONS = 1

/** The least time between two standby Blenders' starts. */
const STANDBY_INTERVAL_MS = 10_000

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
  /** A Blender started ahead of a submitter's job (standby.ts). */
  private standby?: Standby
  private lastStandbyAt = -Infinity
  /** Chunks being rendered: a standby would only take CPU from them. */
  private rendering = 0

  constructor (
    private readonly blender: BlenderInstall,
    private readonly opts: ProcessRendererOptions = {}
  ) {
    this.fresh = new ProcessChunkRenderer(blender, opts)
  }

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    this.rendering++
    try {
      return await this.renderChunk(req)
    } finally {
      this.rendering--
    }
  }

  private async renderChunk (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    // The file's own Python can keep state between chunks (its modules,
    // the driver namespace) that nothing in the session can reset.
    if (req.allowScripts === true) {
      await this.dropStandby() // never used for such a job, idle beside it
      return await this.fresh.render(req)
    }
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
    await this.dropStandby()
    await Promise.all([...this.sessions.values()].map(async s => { await this.end(s) }))
    await this.sweep()
  }

  /**
   * Starts a standby Blender for the submitter whose folder of the work
   * dir this is, unless a chunk is rendering, a session or standby is
   * running, or one started less than STANDBY_INTERVAL_MS ago (a peer
   * that reconnects again and again gets one now and then).
   */
  async standBy (folder: string): Promise<void> {
    if (this.busy() || this.standby !== undefined) return
    if (performance.now() - this.lastStandbyAt < STANDBY_INTERVAL_MS) return
    this.lastStandbyAt = performance.now()
    const standby = await Standby.start(this.blender, folder, ++this.started, this.opts.sandbox)
    // A chunk that came meanwhile started its own Blender.
    if (this.busy() || this.standby !== undefined) {
      await standby.stop()
      return
    }
    this.standby = standby
    void standby.session.exited.then(async () => {
      if (this.standby !== standby) return
      this.standby = undefined
      await removeOutbox(standby.session.outbox)
    })
  }

  private busy (): boolean {
    return this.rendering > 0 || this.sessions.size > 0
  }

  /** Stops the standby Blender, if it is the one for `folder` (any if none). */
  async dropStandby (folder?: string): Promise<void> {
    const standby = this.standby
    if (standby === undefined || (folder !== undefined && standby.folder !== folder)) return
    this.standby = undefined
    await standby.stop()
  }

  /** Starts a session with this chunk, rendered as a fresh Blender would. */
  private async renderFirst (key: string, expect: ChunkRenderRequest): Promise<ChunkRenderResult> {
    await this.makeRoom()
    const standby = this.standby
    if (standby?.fits(expect) === true) {
      this.standby = undefined
      const rendered = await this.renderInStandby(key, expect, standby)
      if (rendered !== undefined) return rendered
    } else {
      await this.dropStandby()
    }
    const outbox = join(dirname(expect.chunkDir), `session-${process.pid}-${++this.started}`)
    await mkdir(outbox)
    const chunk = await ChunkRun.open(expect, outbox)
    const subprocess = startBlender(this.blender, sessionArgv(expect, chunk.inner),
      { dir: outbox, stdin: 'pipe', sandbox: this.opts.sandbox, readable: readablePaths(expect) })
    const session = new Session(key, expect.blendPath, outbox, subprocess)
    this.sessions.set(key, session)
    log.debug('starting a warm Blender session', { pid: subprocess.pid, chunk: describeChunk(expect) })

    const { outcome, exited } = await session.follow(chunk.onLine, expect, this.opts.sandbox)
    return await this.concludeFirst(session, chunk, expect, outcome, exited)
  }

  /**
   * The first chunk in the standby Blender, which gets the start-up it
   * printed so far as a fresh Blender's; undefined if it declined the job.
   */
  private async renderInStandby (key: string, expect: ChunkRenderRequest,
    standby: Standby): Promise<ChunkRenderResult | undefined> {
    const chunk = await ChunkRun.open(expect, standby.session.outbox)
    const session = standby.adopt(key, expect, chunk.inner)
    this.sessions.set(key, session)
    for (const line of session.header) chunk.onLine(line)
    log.debug('rendering in the standby Blender', { pid: session.pid, chunk: describeChunk(expect) })

    const { outcome, exited } = await session.follow(chunk.onLine, expect, this.opts.sandbox)
    // Gone before the scene was loaded (killed while it waited, say): a
    // Blender started for the job gives the verdict a fresh one would.
    const lost = exited && !session.loaded && !outcome.cancelled && !outcome.timedOut
      ? 'it ended before the scene was set up'
      : undefined
    const reason = session.declined ?? lost
    if (reason === undefined) return await this.concludeFirst(session, chunk, expect, outcome, exited)
    log.info('the standby Blender cannot take this job, starting one for it',
      { chunk: describeChunk(expect), reason })
    this.forget(session)
    await chunk.discard()
    await removeOutbox(session.outbox)
    await rm(expect.chunkDir, { recursive: true, force: true })
    await prepareChunkDir(expect.chunkDir)
    return undefined
  }

  private async concludeFirst (session: Session, chunk: ChunkRun, expect: ChunkRenderRequest,
    outcome: ProcessOutcome, exited: boolean): Promise<ChunkRenderResult> {
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
    await removeFolder(session.outbox)
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
    await Promise.all(dirs.map(removeFolder))
  }
}

async function removeFolder (dir: string): Promise<void> {
  if (isStandbyOutbox(dir)) await removeOutbox(dir)
  else await rm(dir, { recursive: true, force: true })
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
