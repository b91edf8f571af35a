/**
 * `submit --dashboard` in a real headless Chromium: the page is open
 * before any worker joins, then the grid fills in as the real Blender's
 * frames arrive, each finished frame gets a thumbnail that loads, and a
 * click shows the full frame and its Blender log. A first worker whose
 * Blender hangs on its chunk shows Blender's progress line in the workers
 * table; the real worker renders the rest, then a speculative copy of the
 * hung chunk, and the job ends on its own; `--dashboard-stay` keeps the
 * page served until Ctrl-C, and the exit code is still the job's.
 *
 * BLENDNET_DASHBOARD_SCREENSHOT=docs/dashboard.png saves the page.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { chromium, type Browser } from 'playwright-core'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { CLI, startCliWorker, stopWorkers, TEST_ENV, type RunningWorker } from '../helpers/cli.js'
import { tempDir } from '../helpers/swarm.js'

const CHROMIUM = process.env.BLENDNET_CHROMIUM ?? '/usr/bin/chromium'
const FRAMES = 6

async function until (condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('submit --dashboard', { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}`, timeout: 300_000 }, () => {
  let dir: string
  let scene: string
  let browser: Browser
  const workers: RunningWorker[] = []

  before(async () => {
    dir = await tempDir('blendnet-dashboard-')
    scene = join(dir, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: FRAMES, width: 192, height: 108 })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
  })

  after(async () => {
    await browser?.close()
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  })

  it('the grid fills in as frames finish, and each finished frame has a thumbnail', async () => {
    const submit = execa(process.execPath, [CLI, 'submit', scene, '--frames', `1-${FRAMES}`, '--chunk-size', '1',
      '--output', join(dir, 'renders'), '--listen', '/ip4/127.0.0.1/tcp/0', '--dashboard-stay'],
    { all: true, buffer: false, reject: false, env: TEST_ENV })
    let seen = ''
    submit.all?.on('data', (data: Buffer) => { seen += data.toString() })
    try {
      await until(() => /^dashboard: http:\/\/127\.0\.0\.1:\d+\/$/m.test(seen) && /listening on/.test(seen), 'the dashboard address')
      const url = /^dashboard: (\S+)$/m.exec(seen)?.[1] ?? ''
      const peer = /^coordinator (\S+) listening on/m.exec(seen)?.[1] ?? ''
      const port = /\/ip4\/127\.0\.0\.1\/tcp\/(\d+)/.exec(seen)?.[1] ?? ''
      const coordinatorAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${peer}`

      const context = await browser.newContext({ viewport: { width: 1200, height: 900 } })
      const page = await context.newPage()
      await page.goto(url)
      // Before any worker: every frame waiting.
      await page.waitForFunction((n) => document.querySelectorAll('#grid .cell[data-state=w]').length === n, FRAMES)
      await page.evaluate(() => {
        const counts: number[] = []
        const w = window as unknown as { doneCounts: number[] }
        w.doneCounts = counts
        new MutationObserver(() => {
          counts.push(document.querySelectorAll('#grid .cell[data-state=d]').length)
        }).observe(document.getElementById('grid') as HTMLElement, { attributes: true, subtree: true })
      })

      // A worker whose Blender hangs holds one chunk; a real one renders
      // the rest, and then copies the hung chunk.
      const hanging = packagePath('test', 'fixtures', 'fake-blender', 'blender-healthy-then-hangs')
      workers.push(await startCliWorker(join(dir, 'hanging'), [coordinatorAddr], ['--blender', hanging, '--no-warm']))
      await page.waitForFunction(() => document.querySelector('#workers')?.textContent?.includes('Sample 1/4') === true,
        undefined, { timeout: 60_000 })
      workers.push(await startCliWorker(join(dir, 'real'), [coordinatorAddr]))

      await page.waitForFunction((n) => document.querySelectorAll('#grid .cell[data-state=d]').length === n,
        FRAMES, { timeout: 120_000 })
      const counts = await page.evaluate(() => (window as unknown as { doneCounts: number[] }).doneCounts)
      const distinct = [...new Set(counts)]
      assert.deepEqual(distinct, [...distinct].sort((a, b) => a - b), `done counts only grow: ${counts.join(',')}`)
      assert.ok(distinct.some(n => n > 0 && n < FRAMES), `the grid filled in step by step, not at once: ${counts.join(',')}`)

      // A thumbnail per finished frame, each loaded as an image.
      await page.waitForFunction((n) => {
        const imgs = Array.from(document.querySelectorAll<HTMLImageElement>('#thumbs img'))
        return imgs.length === n && imgs.every(img => img.complete && img.naturalWidth > 0)
      }, FRAMES, { timeout: 30_000 })
      const size = await page.evaluate(() => {
        const img = document.querySelector<HTMLImageElement>('#thumbs img')
        return [img?.naturalWidth, img?.naturalHeight]
      })
      assert.deepEqual(size, [192, 108])
      assert.match(await page.locator('#workers').innerText(), /3\.4\.1/)

      if (process.env.BLENDNET_DASHBOARD_SCREENSHOT !== undefined) {
        await page.screenshot({ path: process.env.BLENDNET_DASHBOARD_SCREENSHOT, fullPage: true })
      }

      // A click shows the full frame and the Blender log of its chunk.
      await page.locator('#thumbs figure').first().click()
      await page.waitForFunction(() => {
        const img = document.querySelector<HTMLImageElement>('#detail-image img')
        return img !== null && img.complete && img.naturalWidth === 192 &&
          document.getElementById('detail-log')?.textContent?.includes('Read blend') === true
      }, undefined, { timeout: 30_000 })
      await context.close()
      assert.match(seen, /→ worker \S+ \(a copy: the first to deliver each frame wins\)/)
      assert.match(seen, /the dashboard stays up at http:\/\/127\.0\.0\.1:\d+\/ until Ctrl-C/)
    } finally {
      submit.kill('SIGINT')
      const result = await submit
      assert.equal(result.exitCode, 0, seen)
    }
  })
})
