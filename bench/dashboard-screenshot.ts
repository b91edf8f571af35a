/**
 * Makes the dashboard picture in docs/ from a real run: the demo scene
 * on three local workers with the real Blender, `submit --dashboard`,
 * and a headless Chromium that takes the page once about half the frames
 * are done.
 *
 *   npm run bench -- dashboard-screenshot [--out docs/dashboard.png]
 *     [--frames 48] [--res 320x180] [--chromium /usr/bin/chromium]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { chromium } from 'playwright-core'
import { findBlender } from '../src/blender/install.js'
import { makeDemoScene } from '../src/demo/demo-scene.js'
import { CLI, startCliWorker, stopWorkers, TEST_ENV, type RunningWorker } from '../test/helpers/cli.js'

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/dashboard.png' },
    frames: { type: 'string', default: '48' },
    res: { type: 'string', default: '320x180' },
    chromium: { type: 'string', default: process.env.BLENDNET_CHROMIUM ?? '/usr/bin/chromium' }
  }
})

const frames = Number(values.frames)
const [width, height] = values.res.split('x').map(Number)

async function until (condition: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'blendnet-shot-'))
  const workers: RunningWorker[] = []
  try {
    const scene = join(dir, 'shot.blend')
    await makeDemoScene(await findBlender(), scene, { frames, width, height, samples: 16 })
    workers.push(await startCliWorker(join(dir, 'w0')))
    for (const n of [1, 2]) workers.push(await startCliWorker(join(dir, `w${n}`), [workers[0].addr]))

    const submit = execa(process.execPath, [CLI, 'submit', scene, '--frames', `1-${frames}`, '--chunk-size', '2',
      '--output', join(dir, 'renders'), '--bootstrap', workers[0].addr, '--dashboard'],
    { all: true, buffer: false, reject: false, env: TEST_ENV })
    let seen = ''
    submit.all?.on('data', (data: Buffer) => { seen += data.toString() })
    await until(() => /^dashboard: \S+$/m.test(seen), 'the dashboard address')
    const url = /^dashboard: (\S+)$/m.exec(seen)?.[1] ?? ''

    const browser = await chromium.launch({
      executablePath: values.chromium,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    await page.goto(url)
    await page.waitForFunction((half) => document.querySelectorAll('#grid .cell[data-state=d]').length >= half,
      Math.floor(frames / 2), { timeout: 300_000 })
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>('#thumbs img'))
      .every(img => img.complete && img.naturalWidth > 0))
    await page.screenshot({ path: resolve(values.out), fullPage: true })
    await browser.close()
    process.stderr.write(`saved ${values.out}\n`)
    const result = await submit
    process.stderr.write(`submit exited ${result.exitCode}\n`)
  } finally {
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
