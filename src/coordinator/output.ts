/**
 * The `--output` folder. A frame is written to a temp file inside it, then
 * checked (size, SHA-256, decodes as an image of the job's format and
 * resolution) and only then renamed to its final name, so the folder never
 * holds a partial or unverified frame. Final names come from the frame
 * number alone: nothing a worker sends can name a path.
 */
import { randomBytes } from 'node:crypto'
import { readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Stream } from '@libp2p/interface'
import { verifyImage, type ExpectedImage } from '../image/verify.js'
import { frameFileName } from '../job/naming.js'
import { LocalWriteError, receiveFile } from '../net/streams.js'

export type WriteResult = { ok: true, path: string } | { ok: false, reason: string }

/** The output folder cannot take a frame: the job cannot go on. */
export class OutputWriteError extends Error {
  override name = 'OutputWriteError'
}

export class OutputFolder {
  constructor (readonly dir: string, private readonly image: ExpectedImage) {}

  pathOf (frame: number): string {
    return join(this.dir, frameFileName(frame, this.image.format))
  }

  /**
   * Receives one frame's bytes from the stream and writes it atomically.
   * Call synchronously after unwrapping the stream from its framed reader.
   */
  async receive (stream: Stream, frame: number, size: number,
    sha256: Uint8Array): Promise<WriteResult> {
    const final = this.pathOf(frame)
    const temp = join(this.dir, `.${frameFileName(frame, this.image.format)}.${randomBytes(4).toString('hex')}.part`)
    try {
      const got = await receiveFile(stream, temp, size)
      const problem = Buffer.compare(got.sha256, sha256) !== 0
        ? 'SHA-256 does not match the bytes received'
        : this.imageProblem(await readFile(temp))
      if (problem !== undefined) {
        await rm(temp, { force: true })
        return { ok: false, reason: problem }
      }
      await rename(temp, final).catch((err: Error) => {
        throw new OutputWriteError(`cannot write ${final}: ${err.message}`, { cause: err })
      })
      return { ok: true, path: final }
    } catch (err) {
      await rm(temp, { force: true })
      if (err instanceof LocalWriteError) {
        throw new OutputWriteError(`cannot write into ${this.dir}: ${err.message}`, { cause: err })
      }
      throw err
    }
  }

  private imageProblem (bytes: Uint8Array): string | undefined {
    const check = verifyImage(bytes, this.image)
    return check.ok ? undefined : check.reason
  }
}
