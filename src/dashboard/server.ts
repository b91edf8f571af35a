/**
 * `submit --dashboard`: a page on 127.0.0.1 that follows the job live.
 *
 *   GET /              the page (dashboard/page.ts), everything inline
 *   GET /api/state     the job as JSON: grid, summary, workers, failures
 *   GET /api/events    Server-Sent Events: `state` once, then `update`s
 *   GET /frames/N      frame N's file, once it is in the output folder
 *   GET /thumbs/N      frame N's preview PNG (dashboard/thumbnails.ts)
 *   GET /logs/N        Blender's log of the chunk that rendered frame N
 *
 * Files are found from the frame number alone, by the names blendnet
 * gives them: no part of a URL is ever joined into a path. Requests that
 * name another host (a DNS-rebinding page) are refused.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { UsageError } from '../common/errors.js'
import { logger } from '../common/log.js'
import { chunkLogDir } from '../coordinator/log-handler.js'
import { frameFileName, isImageFormat } from '../job/naming.js'
import { STATE_LETTER, type JobView } from '../progress/job-view.js'
import { PAGE_CSP, PAGE_HTML } from './page.js'
import { previewKindOf, Thumbnails } from './thumbnails.js'

const log = logger('dashboard')

export interface DashboardOptions {
  view: JobView
  outputDir: string
  /** 0 picks a free port. */
  port: number
}

/** Pushes to open pages are batched this long: one per burst of events. */
const PUSH_DELAY_MS = 50
/** Pages are told the time-driven numbers (ETA, elapsed) this often. */
const TICK_MS = 2000
const MAX_PAGES = 64

const CONTENT_TYPES: Record<string, string> = {
  PNG: 'image/png', JPEG: 'image/jpeg', TIFF: 'image/tiff', OPEN_EXR: 'image/x-exr', OPEN_EXR_MULTILAYER: 'image/x-exr'
}

const ROUTE = /^\/(frames|thumbs|logs)\/(-?\d{1,9})$/

export class DashboardServer {
  private readonly server: Server
  private readonly pages = new Set<ServerResponse>()
  private readonly thumbnails: Thumbnails
  private readonly pending = new Set<number>()
  private pushTimer?: NodeJS.Timeout
  private readonly ticker: NodeJS.Timeout
  private port = 0

  constructor (private readonly opts: DashboardOptions) {
    this.thumbnails = new Thumbnails(frame => this.finishedFile(frame))
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: Error) => {
        log.warn('dashboard request failed', { url: req.url, err: err.message })
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error')
        else res.destroy()
      })
    })
    this.ticker = setInterval(() => { this.push() }, TICK_MS)
    this.ticker.unref()
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}/`
  }

  /** Listens on 127.0.0.1 only; a port in use is the user's to change. */
  async start (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'EADDRINUSE' || err.code === 'EACCES'
          ? new UsageError(`--dashboard-port ${this.opts.port} cannot be used on 127.0.0.1 (${err.code === 'EADDRINUSE' ? 'in use' : 'not allowed'}); pick another or 0 for any free port`)
          : err)
      })
      this.server.listen(this.opts.port, '127.0.0.1', () => { resolve() })
    })
    const address = this.server.address()
    this.port = typeof address === 'object' && address !== null ? address.port : this.opts.port
    log.info('dashboard listening', { url: this.url })
  }

  /** Frames whose state changed: pages hear of them shortly. */
  changed (frames: number[] = []): void {
    for (const frame of frames) this.pending.add(frame)
    if (this.pushTimer !== undefined) return
    this.pushTimer = setTimeout(() => { this.push() }, PUSH_DELAY_MS)
  }

  async close (): Promise<void> {
    clearInterval(this.ticker)
    clearTimeout(this.pushTimer)
    this.push()
    for (const page of this.pages) page.end()
    this.pages.clear()
    this.server.closeAllConnections()
    await new Promise<void>(resolve => { this.server.close(() => { resolve() }) })
  }

  private push (): void {
    clearTimeout(this.pushTimer)
    this.pushTimer = undefined
    if (this.pages.size === 0) { this.pending.clear(); return }
    const changes = [...this.pending].map(f => [f, STATE_LETTER[this.opts.view.stateOf(f) ?? 'waiting']])
    this.pending.clear()
    const data = JSON.stringify({ changes, ...this.live() })
    for (const page of this.pages) page.write(`event: update\ndata: ${data}\n\n`)
  }

  /** What changes as the job runs, besides the grid. */
  private live (): Record<string, unknown> {
    const { view } = this.opts
    return { summary: view.summary(), workers: view.workers(), failures: view.failures.slice(-20) }
  }

  private state (): Record<string, unknown> {
    const { info } = this.opts.view
    return {
      job: { jobId: info.jobId, scene: info.scene, format: info.format, frames: info.frames, preview: previewKindOf(info.format) },
      grid: this.opts.view.grid(),
      ...this.live()
    }
  }

  private async route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.fromThisHost(req)) { send(res, 403, 'text/plain', 'wrong host'); return }
    if (req.method !== 'GET' && req.method !== 'HEAD') { send(res, 405, 'text/plain', 'GET only'); return }
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/') { sendPage(res); return }
    if (path === '/api/state') { send(res, 200, 'application/json', JSON.stringify(this.state())); return }
    if (path === '/api/events') { this.follow(res); return }
    const match = ROUTE.exec(path)
    if (match === null) { send(res, 404, 'text/plain', 'not found'); return }
    const frame = Number(match[2])
    if (match[1] === 'frames') await this.sendFrame(res, frame)
    else if (match[1] === 'thumbs') await this.sendThumbnail(res, frame)
    else await this.sendLog(res, frame)
  }

  /** Only requests addressed to 127.0.0.1 or localhost at our port. */
  private fromThisHost (req: IncomingMessage): boolean {
    const host = req.headers.host ?? ''
    return host === `127.0.0.1:${this.port}` || host === `localhost:${this.port}`
  }

  private follow (res: ServerResponse): void {
    if (this.pages.size >= MAX_PAGES) { send(res, 503, 'text/plain', 'too many pages open'); return }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' })
    res.write(`event: state\ndata: ${JSON.stringify(this.state())}\n\n`)
    this.pages.add(res)
    res.on('close', () => { this.pages.delete(res) })
  }

  /** The output file of a frame of this job that is done, else undefined. */
  private finishedFile (frame: number): string | undefined {
    const { view, outputDir } = this.opts
    const state = view.stateOf(frame)
    if ((state !== 'done' && state !== 'there') || !isImageFormat(view.info.format)) return undefined
    return join(outputDir, frameFileName(frame, view.info.format))
  }

  private async sendFrame (res: ServerResponse, frame: number): Promise<void> {
    const file = this.finishedFile(frame)
    const bytes = file === undefined ? undefined : await readFile(file).catch(() => undefined)
    if (bytes === undefined) { send(res, 404, 'text/plain', `frame ${frame} is not in the output folder`); return }
    const type = CONTENT_TYPES[this.opts.view.info.format] ?? 'application/octet-stream'
    send(res, 200, type, bytes, { 'Content-Disposition': `inline; filename="${frameFileName(frame, this.opts.view.info.format as 'PNG')}"` })
  }

  private async sendThumbnail (res: ServerResponse, frame: number): Promise<void> {
    const kind = previewKindOf(this.opts.view.info.format)
    if (kind === 'browser') { await this.sendFrame(res, frame); return }
    const png = kind === 'png' ? await this.thumbnails.of(frame) : undefined
    if (png === undefined) { send(res, 404, 'text/plain', `no preview of frame ${frame}`); return }
    send(res, 200, 'image/png', png)
  }

  private async sendLog (res: ServerResponse, frame: number): Promise<void> {
    const text = await this.chunkLogOf(frame)
    if (text === undefined) { send(res, 404, 'text/plain', `no Blender log of frame ${frame} is kept`); return }
    send(res, 200, 'text/plain; charset=utf-8', text)
  }

  /**
   * The kept log of the frame's chunk: the worker's that delivered the
   * frame, else the newest. Named by log-handler.ts; listed, not guessed.
   */
  private async chunkLogOf (frame: number): Promise<string | undefined> {
    const chunk = this.opts.view.chunkOf(frame)
    if (chunk === undefined) return undefined
    const dir = chunkLogDir(this.opts.outputDir, this.opts.view.info.jobId)
    const prefix = `chunk-${String(chunk).padStart(4, '0')}_`
    const names = (await readdir(dir).catch(() => [] as string[]))
      .filter(name => name.startsWith(prefix) && /^[\w.-]+\.log$/.test(name))
      .sort()
    const by = this.opts.view.renderedBy(frame)
    const pick = names.filter(n => by !== undefined && n.includes(`_ok_${by}_`)).at(-1) ?? names.at(-1)
    return pick === undefined ? undefined : await readFile(join(dir, pick), 'utf8')
  }
}

function sendPage (res: ServerResponse): void {
  send(res, 200, 'text/html; charset=utf-8', PAGE_HTML, { 'Content-Security-Policy': PAGE_CSP })
}

function send (res: ServerResponse, status: number, type: string,
  body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers
  })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
