/**
 * What a worker sends its coordinator about a chunk once Blender is done:
 * each frame (retried across reconnects while the lease holds), Blender's
 * log of the chunk, or why the chunk failed.
 */
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CHUNK_LOG_NAME } from '../blender/chunk-files.js'
import { ChunkRenderError } from '../blender/errors.js'
import { parseLogLine } from '../blender/log-parser.js'
import { UPLOAD_RETRY_FIRST_MS, UPLOAD_RETRY_MAX_MS } from '../common/constants.js'
import { fileProblem, messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import type { CoordinatorClient } from './coordinator-client.js'

const log = logger('worker')

/** The chunk was taken away (lease lapsed, coordinator restarted). */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError'
}

/**
 * Pushes one frame until the coordinator answers. A connection that
 * drops is not the frame's fault: the upload is retried, with backoff,
 * for as long as the lease holds (the lease keeper aborts when it is
 * lost), so the rendered frame is not thrown away over a network blip.
 */
export async function deliverFrame (client: CoordinatorClient, chunkId: number,
  frame: number, path: string, signal: AbortSignal): Promise<void> {
  const fields = { job: client.jobId, chunk: chunkId, frame }
  for (let attempt = 1; ; attempt++) {
    const outcome = await client.pushFrame(chunkId, frame, path, signal)
      .then(reply => reply, (err: unknown) => err instanceof Error ? err : new Error(String(err)))
    if (!(outcome instanceof Error)) {
      if (outcome.stale === true) throw new LeaseLostError(`the coordinator no longer counts on frame ${frame}: ${outcome.reason}`)
      if (!outcome.accepted) throw new Error(`coordinator refused frame ${frame}: ${outcome.reason}`)
      log.info('frame delivered', { ...fields, attempts: attempt })
      return
    }
    if (signal.aborted) throw outcome
    // A frame gone from disk cannot be sent again.
    await access(path)
    const wait = Math.min(UPLOAD_RETRY_MAX_MS, UPLOAD_RETRY_FIRST_MS * 2 ** (attempt - 1))
    log.warn('frame upload failed, retrying', { ...fields, attempt, retryInMs: wait, err: outcome.message })
    await sleep(wait, undefined, { signal }).catch(() => {})
    if (signal.aborted) throw outcome
  }
}

/** The log is for the artist's records: its loss never fails a chunk. */
export async function sendChunkLog (client: CoordinatorClient, chunkId: number,
  logPath: string, failed: boolean): Promise<void> {
  const fields = { job: client.jobId, chunk: chunkId }
  try {
    const reply = await client.pushLog(chunkId, logPath, failed)
    if (!reply.accepted) log.warn('coordinator refused the chunk log', { ...fields, reason: reply.reason })
  } catch (err) {
    log.warn('could not send the chunk log', { ...fields, err: messageOf(err) })
  }
}

/**
 * The chunk went to another worker mid-way (a speculative copy won): the
 * frames this worker delivered keep their Blender log, as far as it got.
 */
export async function sendLogOfDelivered (client: CoordinatorClient, chunkId: number,
  chunkDir: string, accepted: number): Promise<void> {
  const logPath = join(chunkDir, CHUNK_LOG_NAME)
  if (accepted === 0 || !await exists(logPath)) return
  await sendChunkLog(client, chunkId, logPath, false)
}

async function exists (path: string): Promise<boolean> {
  return await access(path).then(() => true, () => false)
}

/**
 * Why a chunk failed, as the artist reads it. A file error is this
 * worker's own (its work dir or cache: a full or read-only disk), said in
 * words with the file it concerns.
 */
export function failureReason (err: unknown): string {
  if (err instanceof ChunkRenderError) return err.reason
  const { code, path, syscall } = (err ?? {}) as NodeJS.ErrnoException
  if (typeof code === 'string' && typeof path === 'string') {
    return `the worker could not ${syscall ?? 'use'} its file ${path}: ${fileProblem(err)}`
  }
  return messageOf(err)
}

export async function reportChunkFailure (client: CoordinatorClient, chunkId: number,
  err: unknown): Promise<void> {
  const reason = failureReason(err)
  const tail = err instanceof ChunkRenderError ? err.logTail : []
  log.warn('chunk failed', { job: client.jobId, chunk: chunkId, reason })
  await client.reportFailure(chunkId, reason, tail).catch((e: Error) => {
    log.warn('could not report failure', { job: client.jobId, chunk: chunkId, err: e.message })
  })
}

/** Lines after which a frame written since might not be what was asked. */
const TAINTING: ReadonlySet<string> = new Set([
  'error', 'traceback', 'out-of-memory', 'driver-failed', 'newer-file', 'scene-missing'
])

/**
 * Uploads frames while Blender renders the next ones: frame N travels
 * while N+1 renders. Only while Blender's output is clean so far (an error
 * line stops early uploads; those frames wait for the chunk's verdict),
 * and never the chunk's last frame, which keeps the lease open for the
 * chunk's log and verdict.
 */
export class EarlyUploads {
  private readonly sent = new Set<number>()
  /** Frames the coordinator accepted. */
  accepted = 0
  private chain: Promise<void> = Promise.resolve()
  private tainted = false
  private failure?: unknown

  constructor (private readonly client: CoordinatorClient,
    private readonly chunkId: number, private readonly frames: number[],
    private readonly abort: AbortController) {}

  /** For the renderer's onLogLine. */
  readonly onLogLine = (line: string): void => {
    const event = parseLogLine(line)
    if (event !== undefined && TAINTING.has(event.kind)) this.tainted = true
  }

  /** For the renderer's onFrameSaved. */
  readonly onFrameSaved = (frame: number, path: string): void => {
    if (this.tainted || frame === this.frames.at(-1) || this.sent.has(frame)) return
    this.sent.add(frame)
    this.chain = this.chain.then(async () => {
      if (this.failure !== undefined) return
      await deliverFrame(this.client, this.chunkId, frame, path, this.abort.signal)
      this.accepted++
    }).catch((err: unknown) => {
      this.failure ??= err
      // Another worker delivered this frame first (a speculative copy, or
      // the chunk was given away): rendering on is wasted work.
      if (err instanceof LeaseLostError) this.abort.abort()
    })
  }

  /** Waits for the uploads under way; throws the first that failed. */
  async settle (): Promise<void> {
    await this.chain
    if (this.failure !== undefined) throw this.failure
  }

  /** After the chunk's verdict: the frames not uploaded early, in order. */
  async deliverRest (frames: Array<{ frame: number, path: string }>): Promise<void> {
    for (const { frame, path } of frames) {
      if (this.has(frame)) continue
      await deliverFrame(this.client, this.chunkId, frame, path, this.abort.signal)
      this.accepted++
    }
  }

  /** Already delivered: the chunk's verdict need not send it again. */
  has (frame: number): boolean {
    return this.sent.has(frame) && this.failure === undefined
  }
}
