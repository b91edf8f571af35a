/**
 * Local vs swarm: one generated scene rendered five ways in one run, so
 * that blendnet's overhead is read against plain Blender on the same
 * machine at the same moment (PRODUCT.md, Targets: within 5%).
 *
 *   scripts/node.sh dist/bench/local-vs-swarm.js \
 *     [--runs 3] [--res 320x180] [--samples 16]
 *
 * Progress goes to stderr; the Markdown report goes to stdout.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { findBlender, type BlenderInstall } from '../src/blender/install.js'
import { makeDemoScene } from '../src/demo/demo-scene.js'
import { runCli, startCliWorker, stopWorkers } from '../test/helpers/cli.js'

const FRAMES = 48
/** Generous: a large --res or --samples can take many minutes. */
const RUN_TIMEOUT_MS = 30 * 60_000

interface BenchOptions {
  runs: number
  width: number
  height: number
  samples: number
}

/** What every run shares: the Blender, the scene and the temp folder. */
interface Context {
  blender: BlenderInstall
  scene: string
  root: string
}

interface Approach {
  name: string
  /** Blender processes started for the frames, as a reader counts them. */
  blenderRuns: string
  /** blendnet rows: a worker is started and listening before the clock. */
  needsWorker: boolean
  /** Options of that worker. */
  workerArgs?: string[]
  run: (ctx: Context, out: string, workerAddr: string) => Promise<void>
}

interface Sample { seconds: number, load: number }

// The approaches, in the order the table lists them.

const APPROACHES: Approach[] = [
  {
    name: 'plain `blender -a`',
    blenderRuns: '1',
    needsWorker: false,
    run: async (ctx, out) => { await blender(ctx, out, ['-a']) }
  },
  {
    name: 'one `blender -f N` per frame',
    blenderRuns: String(FRAMES),
    needsWorker: false,
    run: async (ctx, out) => {
      for (let f = 1; f <= FRAMES; f++) await blender(ctx, out, ['-f', `${f}`])
    }
  },
  swarmApproach(4, false),
  swarmApproach(4, true),
  swarmApproach(FRAMES, false)
]

/** `blender -b scene.blend -o OUT/f_#### -F PNG -x 1`, then `rest`. */
async function blender (ctx: Context, out: string, rest: string[]) {
  const args = ['-b', ctx.scene, '-o', join(out, 'f_####'),
    '-F', 'PNG', '-x', '1', ...rest]
  const result = await execa(ctx.blender.path, args, {
    all: true, reject: false, stdin: 'ignore', timeout: RUN_TIMEOUT_MS
  })
  if (result.exitCode !== 0) {
    throw new Error(`blender ${args.join(' ')} exited ${result.exitCode}:\n` +
      tail(result.all))
  }
}

/**
 * `submit` from spawn to exit; submit itself runs Blender once, to read
 * the scene (twice on its first run, for `--version`). A warm
 * worker keeps one Blender for the job; the others start one per chunk.
 */
function swarmApproach (chunkSize: number, warm: boolean): Approach {
  return {
    name: `blendnet, 1 worker, ${warm ? 'warm session, ' : ''}\`--chunk-size ${chunkSize}\``,
    blenderRuns: `${warm ? 1 : Math.ceil(FRAMES / chunkSize)} (+1 in submit)`,
    needsWorker: true,
    workerArgs: warm ? [] : ['--no-warm'],
    run: async (ctx, out, workerAddr) => {
      await submit(['submit', ctx.scene, '--frames', `1-${FRAMES}`,
        '--chunk-size', String(chunkSize), '--output', out,
        '--bootstrap', workerAddr])
    }
  }
}

async function submit (args: string[]): Promise<void> {
  const result = await runCli(args, RUN_TIMEOUT_MS)
  const done = new RegExp(`^done: ${FRAMES} frames`, 'm')
  if (result.exitCode !== 0 || !done.test(String(result.stdout))) {
    throw new Error(`blendnet ${args.join(' ')} exited ${result.exitCode}:\n` +
      tail(`${String(result.stdout)}\n${String(result.stderr)}`))
  }
}

function tail (text: string | undefined, lines = 15): string {
  return (text ?? '').trimEnd().split('\n').slice(-lines).join('\n')
}

// Measuring.

/** Times one run of one approach and checks all frames were written. */
async function measure (ctx: Context, approach: Approach): Promise<Sample> {
  const out = await mkdtemp(join(ctx.root, 'out-'))
  const worker = approach.needsWorker
    ? await startCliWorker(await mkdtemp(join(ctx.root, 'worker-')), [], approach.workerArgs)
    : undefined
  const load = loadavg()[0]
  try {
    const started = performance.now()
    await approach.run(ctx, out, worker?.addr ?? '')
    const seconds = (performance.now() - started) / 1000

    await expectFrames(out, approach.name)
    return { seconds, load }
  } finally {
    if (worker !== undefined) await stopWorkers([worker])
    await rm(out, { recursive: true, force: true })
  }
}

async function expectFrames (dir: string, what: string): Promise<void> {
  const pngs = (await readdir(dir)).filter(name => name.endsWith('.png'))
  if (pngs.length !== FRAMES) {
    throw new Error(`${what} wrote ${pngs.length} PNGs, not ${FRAMES}`)
  }
}

/**
 * Round-robin: every round runs each approach once, so a burst of load
 * from elsewhere on the machine falls on all rows alike.
 */
async function measureAll (ctx: Context, runs: number): Promise<Sample[][]> {
  const samples: Sample[][] = APPROACHES.map(() => [])
  for (let round = 1; round <= runs; round++) {
    for (const [i, approach] of APPROACHES.entries()) {
      const sample = await measure(ctx, approach)
      samples[i].push(sample)
      process.stderr.write(`round ${round}/${runs}: ${approach.name}: ` +
        `${sample.seconds.toFixed(2)} s (load ${sample.load.toFixed(2)})\n`)
    }
  }
  return samples
}

// Reporting.

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2
}

function percentOver (value: number, base: number): string {
  const pct = (value / base - 1) * 100
  return `${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%`
}

function table (samples: Sample[][]): string {
  const seconds = samples.map(s => s.map(x => x.seconds))
  const [baseMedian, baseMin] = [median(seconds[0]), Math.min(...seconds[0])]
  const rows = APPROACHES.map((approach, i) => {
    const [med, min] = [median(seconds[i]), Math.min(...seconds[i])]
    return `| ${approach.name} | ${approach.blenderRuns} | ${med.toFixed(2)} ` +
      `| ${min.toFixed(2)} | ${(med / FRAMES).toFixed(3)} ` +
      `| ${percentOver(med, baseMedian)} | ${percentOver(min, baseMin)} |`
  })
  return [
    '| approach | Blender runs | median s | min s | s/frame (median) ' +
      '| overhead (median) | overhead (min) |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows
  ].join('\n')
}

function rawSamples (samples: Sample[][]): string {
  return APPROACHES.map((approach, i) => `- ${approach.name}: ` +
    samples[i].map(s => `${s.seconds.toFixed(2)} s (load ${s.load.toFixed(2)})`)
      .join(', ')).join('\n')
}

function machine (ctx: Context, opts: BenchOptions, started: Date,
  loads: number[]): string {
  const cpu = cpus()
  return [
    `- date: ${started.toISOString()}`,
    `- machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}), ` +
      `Linux ${release()}`,
    `- Blender ${ctx.blender.version} (${ctx.blender.path}), ` +
      `Node.js ${process.version}`,
    `- scene: demo scene, ${FRAMES} frames, ${opts.width}x${opts.height}, ` +
      `Cycles CPU ${opts.samples} samples, PNG`,
    `- runs per approach: ${opts.runs}, interleaved round by round`,
    `- load average (1 min) at start / end: ` +
      loads.map(l => l.toFixed(2)).join(' / ')
  ].join('\n')
}

// Options and the run itself.

function readOptions (argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '3' },
      res: { type: 'string', default: '320x180' },
      samples: { type: 'string', default: '16' }
    }
  })
  const size = /^(\d+)x(\d+)$/.exec(values.res)
  if (size === null) {
    throw new Error(`--res "${values.res}": write it as WIDTHxHEIGHT, ` +
      'e.g. 320x180')
  }
  return {
    runs: positive(values.runs, '--runs'),
    width: positive(size[1], '--res width'),
    height: positive(size[2], '--res height'),
    samples: positive(values.samples, '--samples')
  }
}

function positive (text: string, option: string): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${option} "${text}" must be a whole number, 1 or more`)
  }
  return value
}

async function main (): Promise<void> {
  const opts = readOptions(process.argv.slice(2))
  const blender = await findBlender()
  const root = await mkdtemp(join(tmpdir(), 'blendnet-bench-'))
  try {
    const scene = join(root, 'scene.blend')
    await makeDemoScene(blender, scene, {
      frames: FRAMES, width: opts.width, height: opts.height,
      samples: opts.samples
    })
    const ctx: Context = { blender, scene, root }

    const [started, loadAtStart] = [new Date(), loadavg()[0]]
    const samples = await measureAll(ctx, opts.runs)
    const loads = [loadAtStart, loadavg()[0]]

    process.stdout.write(`${machine(ctx, opts, started, loads)}\n\n` +
      `${table(samples)}\n\nRaw wall times, round by round:\n\n` +
      `${rawSamples(samples)}\n`)
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`local-vs-swarm: ${(err as Error).message}\n`)
  process.exitCode = 1
})
