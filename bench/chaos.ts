/**
 * Chaos, the large run: a job on worker processes with a fake Blender
 * (0.1 s a frame) while random workers are SIGKILLed and restarted and
 * the submit is SIGKILLed and run again; then every frame must be in the
 * output exactly once, as the journal says. test/e2e/chaos.test.ts is the
 * small version; both use test/helpers/chaos.ts.
 *
 *   scripts/node.sh dist/bench/chaos.js [--frames 250] [--workers 10] \
 *     [--kill-every 2] [--submit-kills 2] [--seed N] [--keep]
 *
 * Progress goes to stderr; the Markdown report goes to stdout. Exit 1
 * when the output is wrong or the job did not finish.
 */
import { cpus, loadavg, release } from 'node:os'
import { parseArgs } from 'node:util'
import { ChaosRun, randomSeed, type ChaosOptions, type ChaosResult } from '../test/helpers/chaos.js'

/** Far above a healthy run (a few minutes): past it the job is hung. */
const TIMEOUT_MS = 20 * 60_000

function readOptions (argv: string[]): ChaosOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      frames: { type: 'string', default: '250' },
      workers: { type: 'string', default: '10' },
      'kill-every': { type: 'string', default: '2' },
      'submit-kills': { type: 'string', default: '2' },
      seed: { type: 'string' },
      keep: { type: 'boolean', default: false }
    }
  })
  const killEvery = Number(values['kill-every'])
  if (!(killEvery > 0)) throw new Error(`--kill-every "${values['kill-every']}" must be seconds above 0`)
  return {
    frames: whole(values.frames, '--frames', 1),
    workers: whole(values.workers, '--workers', 1),
    killEveryMs: killEvery * 1000,
    submitKills: whole(values['submit-kills'], '--submit-kills', 0),
    seed: values.seed === undefined ? randomSeed() : whole(values.seed, '--seed', 0),
    timeoutMs: TIMEOUT_MS,
    keep: values.keep,
    log: line => { process.stderr.write(`${new Date().toISOString()} ${line}\n`) }
  }
}

function whole (text: string, option: string, min: number): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < min) throw new Error(`${option} "${text}" must be a whole number, ${min} or more`)
  return value
}

function report (opts: ChaosOptions, r: ChaosResult, started: Date, loads: number[]): string {
  const cpu = cpus()
  const ok = r.problems.length === 0 && r.neverRendered.length === 0
  const waste = ((r.renderedByFake / opts.frames - 1) * 100).toFixed(1)
  return [
    `- date: ${started.toISOString()}`,
    `- machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}), Linux ${release()}, Node.js ${process.version}`,
    `- seed: ${r.seed} (\`--seed ${r.seed}\` replays the kill schedule)`,
    `- fake Blender, ${opts.frameSeconds ?? 0.1} s a frame, \`--chunk-size ${opts.chunkSize ?? 2}\`; ` +
      `a worker killed every ${opts.killEveryMs / 1000} s on average (0.5-1.5x), never the seed worker`,
    `- load average (1 min) at start / end: ${loads.map(l => l.toFixed(2)).join(' / ')}`,
    '',
    '| frames | workers | worker kills | submit kills | wall time | frames rendered / needed | result |',
    '|---:|---:|---:|---:|---:|---:|---|',
    `| ${opts.frames} | ${opts.workers} | ${r.workerKills} | ${r.submitKills} | ${r.wallSeconds.toFixed(1)} s ` +
      `| ${r.renderedByFake} / ${opts.frames} (+${waste}%) | ${ok ? 'every frame once, matching the journal' : 'FAILED'} |`,
    '',
    `- restarts over a stale \`worker.lock\` of the killed PID: ${r.staleLocks} of ${r.workerKills}`,
    `- frames journaled when the submit was killed: ${r.journaledAtSubmitKills.join(', ') || 'none'}`,
    `- leases that expired (a killed worker's chunk reopened): ${r.leaseExpiries}; frames rejected: ${r.rejectedFrames}`,
    `- the last submit's summary: \`${r.summary}\``,
    ...(ok ? [] : [`- problems: ${[...r.problems, ...r.neverRendered.map(f => `frame ${f} never rendered`)].join('; ')}`]),
    ...(r.kept ? [`- run folder kept: ${r.dir}`] : [])
  ].join('\n')
}

async function main (): Promise<void> {
  const opts = readOptions(process.argv.slice(2))
  const [started, loadAtStart] = [new Date(), loadavg()[0]]
  const result = await new ChaosRun(opts).run()
  process.stdout.write(report(opts, result, started, [loadAtStart, loadavg()[0]]) + '\n')
  if (result.problems.length > 0 || result.neverRendered.length > 0) process.exitCode = 1
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${(err as Error).message}\n`)
  process.exitCode = 1
})
