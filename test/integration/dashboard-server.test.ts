/**
 * The dashboard's HTTP server on 127.0.0.1: it serves the files of this
 * job's finished frames and chunk logs, found from a frame number, and
 * nothing else, whatever the URL says.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { PNG } from 'pngjs'
import { chunkLogDir } from '../../src/coordinator/log-handler.js'
import { DashboardServer } from '../../src/dashboard/server.js'
import { JobView } from '../../src/progress/job-view.js'
import { pngBytes } from '../helpers/fake-renderers.js'
import { tempDir } from '../helpers/swarm.js'

const WORKER = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

interface Reply { status: number, type: string, body: Buffer }

/** A raw GET: the path goes out exactly as written, unnormalised. */
async function get (port: number, path: string, host = `127.0.0.1:${port}`, method = 'GET'): Promise<Reply> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host } }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(parts) }) })
    })
    req.on('error', reject)
    req.end()
  })
}

describe('dashboard server', () => {
  let dir: string
  let server: DashboardServer
  let port: number
  let view: JobView

  before(async () => {
    dir = await tempDir('blendnet-dash-')
    const output = join(dir, 'renders')
    await mkdir(output)
    view = new JobView({ jobId: 'job1', scene: 'Scene', format: 'PNG', frames: [1, 2, 3], alreadyDone: new Set([3]) })
    view.apply({ type: 'chunk-granted', chunk: 0, worker: WORKER, frames: [1, 2] })
    view.apply({ type: 'frame-done', frame: 1, worker: WORKER, path: '', done: 2, total: 3 })
    for (const frame of [1, 2, 3]) await writeFile(join(output, `frame_000${frame}.png`), pngBytes(480, 270, frame * 40))
    await writeFile(join(dir, 'secret.txt'), 'not for the page')
    await writeFile(join(output, '.blendnet-secret.log'), 'not a chunk log')
    const logs = chunkLogDir(output, 'job1')
    await mkdir(logs, { recursive: true })
    await writeFile(join(logs, `chunk-0000_frames-1-2_ok_${WORKER}_2026-01-01T00-00-00-000Z.log`), 'Read blend: /x/scene.blend\n')
    server = new DashboardServer({ view, outputDir: output, port: 0 })
    await server.start()
    port = Number(new URL(server.url).port)
  })

  after(async () => {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('listens on 127.0.0.1 and serves the page and the job as JSON', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
    const page = await get(port, '/')
    assert.equal(page.status, 200)
    assert.match(page.body.toString(), /<div id="grid">/)
    const state = JSON.parse((await get(port, '/api/state')).body.toString())
    assert.equal(state.grid, 'dqt')
    assert.equal(state.job.preview, 'png')
  })

  it('serves a finished frame, its preview scaled down, and its chunk\'s Blender log', async () => {
    const frame = await get(port, '/frames/1')
    assert.equal(frame.status, 200)
    assert.equal(frame.type, 'image/png')
    const thumb = PNG.sync.read((await get(port, '/thumbs/3')).body)
    assert.deepEqual([thumb.width, thumb.height], [240, 135])
    assert.equal(thumb.data[0], 120)
    const log = await get(port, '/logs/1')
    assert.equal(log.status, 200)
    assert.equal(log.body.toString(), 'Read blend: /x/scene.blend\n')
  })

  it('serves nothing of a frame that is not finished, nor of one outside the job', async () => {
    for (const path of ['/frames/2', '/thumbs/2', '/frames/4', '/logs/3', '/frames/-1']) {
      assert.equal((await get(port, path)).status, 404, path)
    }
  })

  it('never follows a path from the URL', async () => {
    const attempts = [
      '/frames/../../secret.txt', '/frames/1/../../../secret.txt', '/../secret.txt', '//etc/passwd',
      '/frames/%2e%2e%2fsecret.txt', '/logs/..%2f..%2f.blendnet-secret.log', '/thumbs/1%00.png',
      '/frames/1.png', '/frames/0x1', '/frames/1e3', '/renders/frame_0001.png', '/etc/passwd'
    ]
    for (const path of attempts) {
      const reply = await get(port, path)
      assert.equal(reply.status, 404, path)
      assert.doesNotMatch(reply.body.toString(), /not for the page|not a chunk log|root:/, path)
    }
  })

  it('refuses requests for another host name (DNS rebinding) and anything but GET', async () => {
    assert.equal((await get(port, '/api/state', `evil.example:${port}`)).status, 403)
    assert.equal((await get(port, '/api/state', `localhost:${port}`)).status, 200)
    assert.equal((await get(port, '/api/state', undefined, 'POST')).status, 405)
  })

  it('a port in use is the user\'s to change: one sentence naming the flag', async () => {
    const second = new DashboardServer({ view, outputDir: dir, port })
    await assert.rejects(second.start(), (err: Error) => err.name === 'UsageError' && /--dashboard-port \d+ cannot be used on 127\.0\.0\.1 \(in use\)/.test(err.message))
    await second.close()
  })

  it('streams the job to a page: its state at once, then what changes', async () => {
    const received = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/events' }, (res) => {
        let text = ''
        res.on('data', (d: Buffer) => {
          text += d.toString()
          if (text.includes('event: state') && !text.includes('event: update')) {
            view.apply({ type: 'frame-done', frame: 2, worker: WORKER, path: '', done: 3, total: 3 })
            server.changed([2])
          }
          if (text.includes('event: update')) { req.destroy(); resolve(text) }
        })
      })
      req.on('error', reject)
      req.end()
    })
    const update = JSON.parse(/event: update\ndata: (.*)\n/.exec(received)?.[1] ?? '{}')
    assert.deepEqual(update.changes, [[2, 'd']])
    assert.equal(update.summary.done, 3)
  })
})
