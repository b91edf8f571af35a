/**
 * A standby Blender: one started for a submitter before its job is
 * announced, so that the job's first chunk does not wait for Blender's
 * start-up. That start-up is about 0.45 s here, most of it the dynamic
 * linking of Blender's 341 libraries and its Python, and on a light job
 * it is paid while the submitter is itself reading the scene with its
 * own Blender (docs/blender.md, "Standby Blender"; docs/performance.md).
 *
 * A worker starts one when a submitting peer connects (worker/standby-
 * trigger.ts) and it has no session: render_server.py with no file,
 * waiting on stdin. The job's first chunk then sends it the file to open
 * and the chunk's plan, and it becomes that job's warm session.
 *
 * Sandboxed, Blender sees only what bwrap bound when it started, before
 * the job existed: the submitter's folder of the work dir read-only
 * (`jobs/<coordinator>/`, where every job of that peer will get its
 * files), and a folder of its own in it, writable, as the session's
 * outbox. So a job's Blender may read the files of that submitter's
 * other jobs, never another submitter's. Every other rule of a session
 * holds; what render_server.py cannot do exactly as the command line
 * does (another scene than the file's active one, a linked active scene
 * named like a local one, another format than the scene's) it declines,
 * and the chunk starts a Blender as before.
 */
import { mkdir, rm, rmdir } from 'node:fs/promises'
import { basename, dirname, join, sep } from 'node:path'
import { logger } from '../common/log.js'
import { BLENDER_OUTPUT_PATTERN } from '../job/naming.js'
import { chunkPlan, standbyArgv } from './argv.js'
import { readablePaths, type ChunkRenderRequest } from './driver.js'
import type { BlenderInstall } from './install.js'
import { startBlender } from './process.js'
import type { Sandbox } from './sandbox.js'
import { Session } from './session-blender.js'

const log = logger('blender:standby')

/** A standby no job has come for by then is stopped. */
export const STANDBY_IDLE_MS = 60_000

/** A standby's folder: `standby-<pid>-<n>/` in the submitter's. */
const STANDBY_PREFIX = 'standby-'

export class Standby {
  private readonly idleTimer: NodeJS.Timeout

  private constructor (
    /** The submitter's folder of the work dir, bound read-only. */
    readonly folder: string,
    readonly session: Session
  ) {
    this.idleTimer = setTimeout(() => {
      log.debug('no job came for the standby Blender, stopping it', { pid: session.pid })
      void this.stop()
    }, STANDBY_IDLE_MS)
    this.idleTimer.unref()
  }

  /** Starts Blender; `number` tells this process's standbys apart. */
  static async start (blender: BlenderInstall, folder: string, number: number,
    sandbox: Sandbox | undefined): Promise<Standby> {
    const outbox = join(folder, `${STANDBY_PREFIX}${process.pid}-${number}`)
    await mkdir(outbox, { recursive: true })
    const subprocess = startBlender(blender, standbyArgv(),
      { dir: outbox, stdin: 'pipe', sandbox, readable: [folder] })
    log.info('started a standby Blender for a submitter that connected', { pid: subprocess.pid, folder })
    return new Standby(folder, new Session('', '', outbox, subprocess))
  }

  /** Whether a job's first chunk can render in it: all it reads is in reach. */
  fits (expect: ChunkRenderRequest): boolean {
    if (!this.session.alive || this.session.chunks > 0) return false
    const inside = (path: string): boolean => path.startsWith(this.folder + sep)
    return inside(expect.blendPath) && readablePaths(expect).every(inside)
  }

  /** Hands the Blender over to the chunk's session: no more idle stop. */
  adopt (key: string, expect: ChunkRenderRequest, inner: string): Session {
    clearTimeout(this.idleTimer)
    this.session.assign(key, expect.blendPath)
    this.session.send({
      open: expect.blendPath,
      format: expect.format,
      plan: chunkPlan(expect),
      output: join(inner, BLENDER_OUTPUT_PATTERN)
    })
    return this.session
  }

  async stop (): Promise<void> {
    clearTimeout(this.idleTimer)
    await this.session.quit()
    await removeOutbox(this.session.outbox)
  }
}

/** Whether a folder is a standby's outbox (removed with its parent, if empty). */
export function isStandbyOutbox (dir: string): boolean {
  return basename(dir).startsWith(STANDBY_PREFIX)
}

/** The outbox, and the submitter's folder if nothing else is left in it. */
export async function removeOutbox (outbox: string): Promise<void> {
  await rm(outbox, { recursive: true, force: true })
  await rmdir(dirname(outbox)).catch(() => {})
}
