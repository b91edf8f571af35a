/**
 * A chaos run: one job rendered by `blendnet worker` processes with a fake
 * Blender while random workers are SIGKILLed and restarted and the
 * `submit` is SIGKILLed and run again, then a check that the output holds
 * every frame exactly once, as its journal says. Used by
 * test/e2e/chaos.test.ts and bench/chaos.ts.
 *
 * Worker 0 is the seed: never killed, and every other process bootstraps
 * off it, so a restarted worker or a rerun submit always has a live peer
 * to join through. Killing every peer a newcomer knows would test
 * bootstrapping, not the job.
 *
 * The seed fixes the worker kill schedule (when, and which worker); the
 * submit dies at fixed shares of the frames. The swarm's own timing is
 * not reproducible, so a rerun with the same seed replays the same kills
 * against a similar, not identical, job.
 */
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa } from 'execa'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { JOURNAL_DIR, journalPath, type JournalRecord } from '../../src/coordinator/journal.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { frameFileName } from '../../src/job/naming.js'
import { CLI, TEST_ENV } from './cli.js'

/** The fake writes 8x8 frames; the scene must say so or they are refused. */
const SIDE = 8
const FAKE = packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts')
const ADDRESS_TIMEOUT_MS = 30_000
const STOP_GRACE_MS = 5_000

export interface ChaosOptions {
  frames: number
  /** Worker processes, the never-killed seed included. */
  workers: number
  /** Mean time between worker kills; each wait is 0.5-1.5 times this. */
  killEveryMs: number
  submitKills: number
  seed: number
  /** The whole job, submit reruns included; past it the run is a hang. */
  timeoutMs: number
  frameSeconds?: number
  chunkSize?: number
  /** Keep the run's folder (scene, output, logs) even when it passed. */
  keep?: boolean
  log?: (line: string) => void
}

export interface ChaosResult {
  seed: number
  dir: string
  /** Whether `dir` is still there: asked for, or the run failed. */
  kept: boolean
  wallSeconds: number
  workerKills: number
  /** Restarts that found the killed worker's PID still in worker.lock. */
  staleLocks: number
  submitKills: number
  /** Frames in the journal right after each submit kill. */
  journaledAtSubmitKills: number[]
  /** Lines in the fake's count log: every frame any fake finished. */
  renderedByFake: number
  neverRendered: number[]
  leaseExpiries: number
  rejectedFrames: number
  /** The last submit's `done: …` line. */
  summary: string
  /** Every reason the output is wrong; empty when the run passed. */
  problems: string[]
}

type Proc = ReturnType<typeof execa>

interface WorkerProc { proc: Proc, addr: string, workDir: string, output: () => string }

/** A small deterministic PRNG (mulberry32): the same seed, the same kills. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

export function randomSeed (): number {
  return Math.floor(Math.random() * 2 ** 31)
}

export class ChaosRun {
  private readonly random: () => number
  private readonly log: (line: string) => void
  private readonly live = new Set<Proc>()
  private readonly workers: WorkerProc[] = []
  private readonly submitStdout: string[] = []
  private readonly journaledAtKills: number[] = []
  private dir = ''
  private stopping = false
  private workerKills = 0
  private staleLocks = 0

  constructor (private readonly opts: ChaosOptions) {
    this.random = prng(opts.seed)
    this.log = opts.log ?? (() => {})
  }

  private get output (): string { return join(this.dir, 'renders') }
  private get countLog (): string { return join(this.dir, 'rendered.log') }

  async run (): Promise<ChaosResult> {
    const { frames, workers, seed } = this.opts
    this.dir = await mkdtemp(join(tmpdir(), 'blendnet-chaos-'))
    await mkdir(join(this.dir, 'logs'))
    this.log(`chaos seed ${seed}: ${frames} frames, ${workers} workers, folder ${this.dir}`)
    let kept = true
    try {
      await makeDemoScene(await findBlender(), join(this.dir, 'scene.blend'), { frames, width: SIDE, height: SIDE })
      this.workers.push(await this.startWorker(0, []))
      for (let i = 1; i < workers; i++) this.workers.push(await this.startWorker(i, [this.workers[0].addr]))

      const started = performance.now()
      await this.underChaos()
      const wallSeconds = (performance.now() - started) / 1000
      const result = await this.result(wallSeconds)
      kept = result.kept
      return result
    } finally {
      await this.stop()
      if (kept) this.log(`kept ${this.dir} (logs in logs/)`)
      else await rm(this.dir, { recursive: true, force: true })
    }
  }

  /** Kills every process this run started that is still running, by PID. */
  async stop (): Promise<void> {
    this.stopping = true
    while (this.live.size > 0) {
      const procs = [...this.live]
      for (const proc of procs) proc.kill('SIGTERM')
      await Promise.race([Promise.all(procs), sleep(STOP_GRACE_MS)])
      for (const proc of procs) proc.kill('SIGKILL')
      await Promise.all(procs)
    }
    await Promise.all(this.workers.map(async (w, i) => { await this.saveLog(`worker-${i}.last`, w.output()) }))
  }

  /** The submit runs (and dies) while workers die, until it exits 0. */
  private async underChaos (): Promise<void> {
    const stopKilling = new AbortController()
    const submits = this.runSubmits()
    const killer = this.killWorkers(stopKilling.signal)
    const deadline = new AbortController()
    const hang = sleep(this.opts.timeoutMs, undefined, { signal: deadline.signal }).then(() => {
      throw new Error(`the job did not finish within ${this.opts.timeoutMs / 1000} s (seed ${this.opts.seed})`)
    })
    // The killer returns only once told to stop; a throw (a worker that
    // cannot restart) ends the run, like a failed submit or the deadline.
    const killerFailed = killer.then(async () => await new Promise<never>(() => {}))
    try {
      await Promise.race([submits, killerFailed, hang])
    } finally {
      stopKilling.abort()
      deadline.abort()
      await killer.catch(() => {})
    }
  }

  private async runSubmits (): Promise<void> {
    const { frames, submitKills } = this.opts
    // Submit kill k of n when k/(n+1) of the frames are done.
    const killAt = Array.from({ length: submitKills }, (_, k) => Math.ceil(frames * (k + 1) / (submitKills + 1)))
    for (let run = 1; ; run++) {
      const threshold = killAt[this.journaledAtKills.length]
      const { exitCode, killed } = await this.submitOnce(run, threshold)
      if (killed) {
        const journaled = (await lastRecords(this.output)).size
        this.journaledAtKills.push(journaled)
        this.log(`killed submit run ${run} (SIGKILL) with ${journaled} of ${frames} frames journaled; running it again`)
        continue
      }
      if (exitCode !== 0) throw new Error(`submit run ${run} exited ${String(exitCode)} (seed ${this.opts.seed}); see logs/submit-${run}.log`)
      return
    }
  }

  /** One submit to its exit; SIGKILLed once `killAt` frames are done. */
  private async submitOnce (run: number, killAt?: number): Promise<{ exitCode?: number, killed: boolean }> {
    if (this.stopping) throw new Error('stopping')
    const args = ['submit', join(this.dir, 'scene.blend'), '--frames', `1-${this.opts.frames}`,
      '--chunk-size', String(this.opts.chunkSize ?? 2), '--output', this.output,
      '--bootstrap', this.workers[0].addr]
    const proc = this.track(execa(process.execPath, [CLI, ...args],
      { all: true, buffer: false, reject: false, env: TEST_ENV }))
    let stdout = ''
    let all = ''
    let killed = false
    proc.all?.on('data', (d: Buffer) => { all += d.toString() })
    proc.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
      const done = [...stdout.matchAll(/^frame -?\d+ done \((\d+)\/\d+\)/gm)].at(-1)
      if (!killed && killAt !== undefined && done !== undefined && Number(done[1]) >= killAt) {
        killed = true
        proc.kill('SIGKILL')
      }
    })
    const { exitCode } = await proc
    this.submitStdout.push(stdout)
    await this.saveLog(`submit-${run}`, all)
    return { exitCode, killed }
  }

  /**
   * Every 0.5-1.5 × killEveryMs from one kill to the next, SIGKILLs a
   * random non-seed worker and restarts it; a restart slower than that
   * delays the next kill, so at most one worker is down at a time.
   */
  private async killWorkers (signal: AbortSignal): Promise<void> {
    if (this.workers.length < 2) return
    let lastKill = performance.now()
    while (await pause(lastKill + this.opts.killEveryMs * (0.5 + this.random()) - performance.now(), signal)) {
      lastKill = performance.now()
      await this.killAndRestart(1 + Math.floor(this.random() * (this.workers.length - 1)))
    }
  }

  private async killAndRestart (i: number): Promise<void> {
    const old = this.workers[i]
    old.proc.kill('SIGKILL')
    await old.proc
    this.workerKills++
    await this.saveLog(`worker-${i}.${this.workerKills}`, old.output())
    // A SIGKILLed worker cannot remove its lock: the restart must see the PID is dead.
    const lock = await readFile(join(old.workDir, 'worker.lock'), 'utf8').catch(() => '')
    const stale = lock.trim() === String(old.proc.pid)
    if (stale) this.staleLocks++
    this.log(`killed worker ${i} (pid ${String(old.proc.pid)}, kill ${this.workerKills})` +
      `${stale ? ', its worker.lock left behind' : ''}; restarting it`)
    this.workers[i] = await this.startWorker(i, [this.workers[0].addr])
  }

  /**
   * `blendnet worker` with the fake, tracked before its address is known.
   * No sandbox: it would clear the FAKE_BLENDER_* variables and hide the
   * count log, and what is tested here is kills, not confinement.
   */
  private async startWorker (i: number, bootstrap: string[]): Promise<WorkerProc> {
    if (this.stopping) throw new Error('stopping')
    const workDir = join(this.dir, `worker-${i}`)
    const proc = this.track(execa(process.execPath, [CLI, 'worker', '--listen', '/ip4/127.0.0.1/tcp/0',
      '--work-dir', workDir, '--blender', FAKE, '--sandbox', 'none',
      ...bootstrap.flatMap(b => ['--bootstrap', b])], {
      all: true, buffer: false, reject: false,
      env: {
        ...TEST_ENV,
        FAKE_BLENDER_COUNT_LOG: this.countLog,
        FAKE_BLENDER_FRAME_SIZE: String(SIDE),
        FAKE_BLENDER_FRAME_SECONDS: String(this.opts.frameSeconds ?? 0.1)
      }
    }))
    let seen = ''
    let exited = false
    proc.all?.on('data', (d: Buffer) => { seen += d.toString() })
    void proc.finally(() => { exited = true })
    // Up to the newline, so that an address cut between two reads is not taken.
    const address = /^[ \t]+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+)\n/m
    const deadline = Date.now() + ADDRESS_TIMEOUT_MS
    while (address.exec(seen) === null) {
      if (exited || Date.now() > deadline) {
        await this.saveLog(`worker-${i}.failed`, seen)
        throw new Error(`worker ${i} (work dir ${workDir}) ${exited ? 'exited' : 'printed no address'}` +
          ` (seed ${this.opts.seed}):\n${seen}`)
      }
      await sleep(50)
    }
    return { proc, addr: address.exec(seen)![1], workDir, output: () => seen }
  }

  private track (proc: Proc): Proc {
    this.live.add(proc)
    void proc.finally(() => this.live.delete(proc))
    return proc
  }

  private async saveLog (name: string, text: string): Promise<void> {
    await writeFile(join(this.dir, 'logs', `${name}.log`), text).catch(() => {})
  }

  private async result (wallSeconds: number): Promise<ChaosResult> {
    const { frames, seed } = this.opts
    const counted = (await readFile(this.countLog, 'utf8').catch(() => ''))
      .split('\n').filter(l => l !== '').map(l => Number(l.split(' ')[0]))
    const rendered = new Set(counted)
    const stdout = this.submitStdout.join('\n')
    const lines = (pattern: RegExp): string[] => stdout.split('\n').filter(l => pattern.test(l))
    const problems = await checkOutput(this.output, range(frames))
    const neverRendered = range(frames).filter(f => !rendered.has(f))
    return {
      seed,
      dir: this.dir,
      kept: this.opts.keep === true || problems.length > 0 || neverRendered.length > 0,
      wallSeconds,
      workerKills: this.workerKills,
      staleLocks: this.staleLocks,
      submitKills: this.journaledAtKills.length,
      journaledAtSubmitKills: this.journaledAtKills,
      renderedByFake: counted.length,
      neverRendered,
      leaseExpiries: lines(/ went silent; frames /).length,
      rejectedFrames: lines(/^frame -?\d+ from \S+ rejected: /).length,
      summary: lines(/^done: /).at(-1) ?? '(no summary)',
      problems
    }
  }
}

function range (n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1)
}

/** Waits `ms`; false when `signal` aborted the wait. */
async function pause (ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(Math.max(0, ms), undefined, { signal })
    return true
  } catch {
    return false
  }
}

/** Every record of the journal, by frame in order, parseable lines only. */
async function journalRecords (output: string): Promise<Map<number, JournalRecord[]>> {
  const text = await readFile(journalPath(output), 'utf8').catch(() => '')
  const byFrame = new Map<number, JournalRecord[]>()
  for (const line of text.split('\n')) {
    let record: JournalRecord
    try { record = JSON.parse(line) as JournalRecord } catch { continue }
    byFrame.set(record.frame, [...byFrame.get(record.frame) ?? [], record])
  }
  return byFrame
}

async function lastRecords (output: string): Promise<Map<number, JournalRecord>> {
  const byFrame = await journalRecords(output)
  return new Map([...byFrame].map(([frame, records]) => [frame, records.at(-1)!]))
}

/**
 * What is wrong with `output` for a PNG job of `frames`: a frame file
 * missing, a file that is not one of them (a leftover `.part` included),
 * a file whose size or SHA-256 differs from its frame's last journal
 * record, a frame without a record or journaled more than once.
 */
export async function checkOutput (output: string, frames: number[]): Promise<string[]> {
  const problems: string[] = []
  const names = new Set(await readdir(output).catch(() => []))
  const expected = new Map(frames.map(f => [frameFileName(f, 'PNG'), f]))
  for (const name of names) {
    if (name !== JOURNAL_DIR && !expected.has(name)) problems.push(`unexpected file ${name}`)
  }
  const journal = await journalRecords(output)
  for (const [name, frame] of expected) {
    const records = journal.get(frame) ?? []
    const last = records.at(-1)
    if (!names.has(name)) { problems.push(`frame ${frame}: ${name} missing`); continue }
    if (last === undefined) { problems.push(`frame ${frame}: not in the journal`); continue }
    // A rerun skips journaled frames, so a second record is a frame accepted twice.
    if (records.length > 1) problems.push(`frame ${frame}: journaled ${records.length} times`)
    const bytes = await readFile(join(output, name))
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    if (last.file !== name || last.size !== bytes.byteLength || last.sha256 !== sha256) {
      problems.push(`frame ${frame}: ${name} (${bytes.byteLength} bytes, ${sha256.slice(0, 12)}…) ` +
        `differs from its journal record (${last.file}, ${last.size} bytes, ${last.sha256.slice(0, 12)}…)`)
    }
  }
  return problems
}
