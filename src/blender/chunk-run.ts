/**
 * One chunk rendered inside a warm session (session.ts): its folder in the
 * session's, its log, its verdict.
 */
import { link, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { WriteStream } from 'node:fs'
import { CHUNK_LOG_NAME, listChunkFiles } from './chunk-files.js'
import { BlenderLog } from './chunk-log.js'
import { judgeChunk, type ProcessOutcome } from './chunk-verdict.js'
import {
  chunkFailure, type ChunkRenderRequest, type ChunkRenderResult
} from './driver.js'
import { closeLog, lineHandler, openLog } from './process.js'
import { savedFrames } from './request.js'

/** What a chunk replays of its session: the start-up, and which one. */
export interface SessionStartUp {
  readonly header: string[]
  readonly pid?: number
}

/** One chunk in a session: its folder in the session's, its log, its verdict. */
export class ChunkRun {
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
  replay (session: SessionStartUp, number: number): void {
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

  /** Ends the chunk's log, for a chunk given up before it began. */
  async discard (): Promise<void> {
    await closeLog(this.file)
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
