/**
 * In-process stand-ins for Blender, for protocol tests that are about the
 * swarm rather than rendering. Each is named for what it does.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PNG } from 'pngjs'
import { ChunkRenderError } from '../../src/blender/errors.js'
import type { ChunkRenderer, ChunkRenderRequest, ChunkRenderResult } from '../../src/blender/driver.js'
import { frameFileName } from '../../src/job/naming.js'

export function pngBytes (width: number, height: number, shade: number): Buffer {
  const png = new PNG({ width, height })
  png.data.fill(shade % 256)
  return PNG.sync.write(png)
}

/** Writes a solid PNG per frame, its grey level the frame number. */
export class RendersSolidPngs implements ChunkRenderer {
  readonly rendered: number[] = []

  constructor (private readonly width: number, private readonly height: number,
    private readonly msPerChunk = 0) {}

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    await mkdir(req.chunkDir, { recursive: true })
    await new Promise(resolve => setTimeout(resolve, this.msPerChunk))
    const logPath = join(req.chunkDir, 'blender.log')
    await writeFile(logPath, `rendered frames ${req.frames.join(',')}\n`)
    const frames = []
    for (const frame of req.frames) {
      const path = join(req.chunkDir, frameFileName(frame, req.format))
      await writeFile(path, pngBytes(this.width, this.height, frame + 100))
      frames.push({ frame, path })
      this.rendered.push(frame)
    }
    return { frames, logPath, warnings: [] }
  }
}

/** Fails every chunk the way Blender fails a scene without a camera. */
export class FailsEveryChunk implements ChunkRenderer {
  calls = 0

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    this.calls++
    throw new ChunkRenderError('chunk', {
      reason: 'Cannot render, no camera', exitCode: 1, signal: undefined, timedOut: false,
      cancelled: false, logPath: join(req.chunkDir, 'blender.log'), logTail: ['Error: Cannot render, no camera']
    })
  }
}

/** Never finishes until aborted, like a Blender stuck on a frame. */
export class HangsUntilAborted implements ChunkRenderer {
  started = 0

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    this.started++
    return new Promise((_resolve, reject) => {
      req.signal?.addEventListener('abort', () => { reject(new Error('aborted')) })
    })
  }
}

/**
 * Saves the chunk's first frame (logging it as Blender would), then hangs
 * on the next until aborted: a worker stopped mid-chunk.
 */
export class DeliversOneFrameThenHangs implements ChunkRenderer {
  constructor (private readonly width: number, private readonly height: number) {}

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    await mkdir(req.chunkDir, { recursive: true })
    const [first] = req.frames
    const path = join(req.chunkDir, frameFileName(first, req.format))
    await writeFile(path, pngBytes(this.width, this.height, first))
    await writeFile(join(req.chunkDir, 'blender.log'), `Fra:${first} rendering\nSaved: frame ${first}\n`)
    req.onFrameSaved?.(first, path)
    return new Promise((_resolve, reject) => {
      req.signal?.addEventListener('abort', () => { reject(new Error('aborted')) })
    })
  }
}

/**
 * Renders its first chunk, and changes the job's .blend as it does (as a
 * hostile script or another user on the machine could): the worker must
 * notice before the next chunk.
 */
export class TampersWithItsScene extends RendersSolidPngs {
  calls = 0

  override async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    this.calls++
    await appendFile(req.blendPath, 'changed by someone else')
    return super.render(req)
  }
}

/**
 * Writes its frames one by one, a while apart, telling the worker about
 * each as Blender's "Saved:" line would; records when it finished.
 */
export class RendersFramesOneByOne implements ChunkRenderer {
  finishedAt: number[] = []

  constructor (private readonly width: number, private readonly height: number,
    private readonly msPerFrame: number) {}

  async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    await mkdir(req.chunkDir, { recursive: true })
    const logPath = join(req.chunkDir, 'blender.log')
    await writeFile(logPath, '')
    const frames = []
    for (const frame of req.frames) {
      await new Promise(resolve => setTimeout(resolve, this.msPerFrame))
      const path = join(req.chunkDir, frameFileName(frame, req.format))
      await writeFile(path, pngBytes(this.width, this.height, frame + 100))
      req.onFrameSaved?.(frame, path)
      frames.push({ frame, path })
    }
    this.finishedAt.push(Date.now())
    return { frames, logPath, warnings: [] }
  }
}
