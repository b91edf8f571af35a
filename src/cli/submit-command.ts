/**
 * `blendnet submit`: become the coordinator of one job and stay until
 * every frame is in the output folder, checked, or the job has failed.
 */
import { ADAPTIVE_MAX_CHUNK, DEFAULT_CHUNK_TARGET_MS } from '../common/constants.js'
import { formatDuration, parseDuration } from '../common/duration.js'
import { JobFailedError, UsageError } from '../common/errors.js'
import { Coordinator } from '../coordinator/coordinator.js'
import { meetWorkersAhead } from '../coordinator/meet-workers.js'
import type { SchedulerOptions } from '../coordinator/scheduler.js'
import { Journal, journalPath } from '../coordinator/journal.js'
import { OutputFolder, outcomeInFolder } from '../coordinator/output.js'
import { lockOutput } from '../coordinator/output-lock.js'
import { formatFrameList } from '../job/frames.js'
import { frameFileName } from '../job/naming.js'
import { renderKeyOf } from '../job/spec.js'
import { openIdentity } from '../net/identity.js'
import { createSwarmNode, type SwarmNode } from '../net/node.js'
import { describeSwarm, resolveSwarmKey } from '../net/swarm-key.js'
import { prepareCodecs } from '../net/wire.js'
import {
  allLoopback, bootstrapAddrs, listenAddrs, listFlag, peerIdSet, parse, positiveInt,
  stringFlag, type Options
} from './args.js'
import { count, say, stopSignals } from './console.js'
import { CONFIG_HELP } from './config-registry.js'
import { LOG_FILE_HELP, useLogFile } from './log-file.js'
import { movieAfterJob, movieFromFlags, MOVIE_HELP, MOVIE_OPTIONS } from './movie.js'
import { printResume, printSummary } from './progress.js'
import { PROGRESS_HELP, PROGRESS_OPTIONS, progressFlags, SubmitProgress } from './submit-progress.js'
import { planJob, type SubmitInput } from './submit-plan.js'

export const SUBMIT_HELP = `usage: blendnet submit <scene.blend> --output <dir> [options]

Renders the scene's frames on the swarm's workers and writes each frame,
checked, into the output folder as frame_0001.png, frame_-0005.png, ...

options:
  --output <dir>           where the frames go (created if missing)
  --frames <list>          e.g. 0-250, 1-10,20,30-40, -5--1, 1-100x5
                           (default: the scene's own range and step)
  --scene <name>           the scene to render (default: the file's active one)
  --format <format>        PNG, JPEG, TIFF, OPEN_EXR or OPEN_EXR_MULTILAYER
                           (default: the scene's format; movies become PNG)
  --chunk-time <duration>  how long a chunk of frames should take: each
                           worker's chunks follow its measured speed (default
                           ${formatDuration(DEFAULT_CHUNK_TARGET_MS)}; first chunks are one frame)
  --chunk-size <n>         fixed chunks of n frames instead (for simulations
                           and scenes that must render in set runs)
  --priority <n>           workers take jobs of higher priority first and take
                           turns between equal ones (default 0; -1000 to 1000)
  --engine <engine>        CYCLES, BLENDER_EEVEE or BLENDER_WORKBENCH (default: the scene's)
  --device CPU|GPU         Cycles device (default: the scene's); a GPU job never
                           renders on a CPU; other engines ignore it
  --samples <n>            samples per pixel (default: the scene's)
  --resolution <percent>   resolution percentage (default: the scene's)
  --bootstrap <multiaddr>  a worker or peer to join the swarm through (repeatable)
  --listen <multiaddr>     where workers reach this coordinator
  --blender <program>      the Blender used to inspect the scene
  --key <file>             the key this submit runs under, its peer ID
                           (default: identity.key in the config dir)
  --swarm-key <file>       join only the private swarm of this key (default:
                           $BLENDNET_SWARM_KEY, else swarm.key in the config
                           dir if there is one); see blendnet keygen
  --timeout <duration>     give up on frames still missing after this long
  --worker-wait <duration> give up if no worker appears for this long (default 10m)
  --allow-missing          render even if files the scene reads are missing
  --allow-worker <peer id> let only this worker claim (repeatable, or
                           comma-separated); without it, any worker may
  --allow-scripts          let Blender run the Python stored in the file
                           (drivers, registered scripts); only workers started
                           with --allow-scripts take the job
${MOVIE_HELP}${PROGRESS_HELP}  --no-mdns                do not look for peers on the LAN
${LOG_FILE_HELP}${CONFIG_HELP}`

export const OPTIONS: Options = {
  output: { type: 'string', short: 'o' },
  frames: { type: 'string', short: 'f' },
  scene: { type: 'string', short: 'S' },
  format: { type: 'string', short: 'F' },
  'chunk-size': { type: 'string' },
  'chunk-time': { type: 'string' },
  priority: { type: 'string' },
  bootstrap: { type: 'string', multiple: true },
  listen: { type: 'string', multiple: true },
  blender: { type: 'string' },
  key: { type: 'string' },
  'swarm-key': { type: 'string' },
  timeout: { type: 'string' },
  'worker-wait': { type: 'string' },
  'no-mdns': { type: 'boolean' },
  'log-file': { type: 'string' },
  'allow-missing': { type: 'boolean' },
  'allow-scripts': { type: 'boolean' },
  'allow-worker': { type: 'string', multiple: true },
  engine: { type: 'string' },
  device: { type: 'string' },
  samples: { type: 'string' },
  resolution: { type: 'string' },
  ...MOVIE_OPTIONS,
  ...PROGRESS_OPTIONS,
  help: { type: 'boolean', short: 'h' }
}

function optionalInt (parsed: ReturnType<typeof parse>, name: string,
  min: number, max: number): number | undefined {
  const text = stringFlag(parsed, name)
  if (text === undefined) return undefined
  const n = positiveInt(text, `--${name}`, min)
  if (n < min || n > max) throw new UsageError(`--${name} must be from ${min} to ${max}, not ${n}`)
  return n
}

function readInput (args: string[]): { input: SubmitInput, parsed: ReturnType<typeof parse> } {
  const parsed = parse('submit', args, OPTIONS)
  if (parsed.positionals.length !== 1) {
    throw new UsageError(parsed.positionals.length === 0
      ? 'submit needs the .blend file to render, e.g. blendnet submit scene.blend --output renders/'
      : `submit takes one .blend file, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}`)
  }
  const outputDir = stringFlag(parsed, 'output')
  if (outputDir === undefined || outputDir === '') {
    throw new UsageError('submit needs --output <dir>, the folder the frames go to')
  }
  const input: SubmitInput = {
    blendPath: parsed.positionals[0],
    outputDir,
    frames: stringFlag(parsed, 'frames'),
    scene: stringFlag(parsed, 'scene'),
    format: stringFlag(parsed, 'format'),
    // Adaptive jobs are planned in chunks of the most a grant may take.
    chunkSize: positiveInt(stringFlag(parsed, 'chunk-size'), '--chunk-size', ADAPTIVE_MAX_CHUNK),
    allowMissing: parsed.values['allow-missing'] === true,
    allowScripts: parsed.values['allow-scripts'] === true,
    engine: stringFlag(parsed, 'engine'),
    device: stringFlag(parsed, 'device'),
    samples: optionalInt(parsed, 'samples', 1, 1 << 24),
    resolutionPercentage: optionalInt(parsed, 'resolution', 1, 32767)
  }
  return { input, parsed }
}

/** Fixed chunks with --chunk-size; else chunks sized to --chunk-time. */
function chunkingFromFlags (parsed: ReturnType<typeof parse>): SchedulerOptions {
  const size = stringFlag(parsed, 'chunk-size')
  const time = stringFlag(parsed, 'chunk-time')
  if (size !== undefined && time !== undefined) {
    throw new UsageError('give --chunk-size (fixed chunks) or --chunk-time (chunks sized to each worker\'s speed), not both')
  }
  return {
    fixed: size !== undefined,
    targetMs: time === undefined ? DEFAULT_CHUNK_TARGET_MS : parseDuration(time, '--chunk-time')
  }
}

function priorityFromFlags (parsed: ReturnType<typeof parse>): number {
  const text = stringFlag(parsed, 'priority')
  if (text === undefined) return 0
  const n = Number(text)
  if (!/^-?\d+$/.test(text.trim()) || n < -1000 || n > 1000) {
    throw new UsageError(`--priority must be a whole number from -1000 to 1000, not "${text}"`)
  }
  return n
}

export async function submitCommand (args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) { say(SUBMIT_HELP); return 0 }
  const { input, parsed } = readInput(args)
  const progress = new SubmitProgress(progressFlags(parsed))
  const movie = await movieFromFlags(parsed)
  const bootstrap = bootstrapAddrs(listFlag(parsed, 'bootstrap'))
  const timeoutText = stringFlag(parsed, 'timeout')
  const timeoutMs = timeoutText === undefined ? undefined : parseDuration(timeoutText, '--timeout')
  const allowedWorkers = peerIdSet(listFlag(parsed, 'allow-worker'), '--allow-worker')
  const scheduling = chunkingFromFlags(parsed)
  const priority = priorityFromFlags(parsed)
  const waitText = stringFlag(parsed, 'worker-wait')
  const workerWaitMs = waitText === undefined ? undefined : parseDuration(waitText, '--worker-wait')
  let listen = listenAddrs(listFlag(parsed, 'listen'), '--listen')
  if (listen.length === 0) {
    // Workers on this host only need loopback; others need a real address.
    listen = [allLoopback(bootstrap) ? '/ip4/127.0.0.1/tcp/0' : '/ip4/0.0.0.0/tcp/0']
  }

  useLogFile(stringFlag(parsed, 'log-file'))
  const swarmKey = await resolveSwarmKey(stringFlag(parsed, 'swarm-key'))
  const identity = await openIdentity('submit', stringFlag(parsed, 'key'))
  say(describeSwarm(swarmKey))
  if (identity.note !== undefined) say(`note: ${identity.note}`)

  // The node starts once the inputs are checked, while Blender reads the
  // scene: a worker that meets it starts a Blender of its own meanwhile
  // (blender/standby.ts), and it is up by the time the job is.
  const mdns = parsed.values['no-mdns'] !== true && !allLoopback(listen)
  const node = new StartingNode(async () => {
    const started = await createSwarmNode({
      privateKey: identity.key, listen, bootstrap, mdns, swarmKey: swarmKey?.psk, coordinator: true
    })
    await meetWorkersAhead(started)
    return started
  })
  try {
    // The codecs are written while Blender reads the scene, not after.
    setImmediate(prepareCodecs)
    const plan = await planJob(input, stringFlag(parsed, 'blender'), () => { node.start() })
    // A --listen address in use is said now, before the output is touched.
    const swarmNode = await node.started()
    const { spec } = plan
    const finishMovie = movieAfterJob(movie, plan)
    for (const note of plan.notes) say(`note: ${note}`)
    const frames = spec.chunks.flat()
    say(`job ${spec.jobId}: scene "${spec.settings.scene}" of ${spec.blend.name}, frames ${formatFrameList(frames)} (${count(frames.length, 'frame')}${scheduling.fixed ? ` in ${count(spec.chunks.length, 'chunk')}` : `, in chunks of about ${formatDuration(scheduling.targetMs)}`}), ${spec.settings.format} ${spec.settings.width === 0 ? '(size as the scene says)' : `${spec.settings.width}x${spec.settings.height}`}`)

    const blocked = await new OutputFolder(plan.outputDir, spec.settings).blocked(frames)
      .catch((err: Error) => { throw new UsageError(`cannot read what is in --output "${input.outputDir}": ${err.message}`) })
    if (blocked.length > 0) {
      const name = frameFileName(blocked[0], spec.settings.format)
      throw new UsageError(`"${name}" in --output "${input.outputDir}" is a folder, in the way of frame ${blocked[0]}${blocked.length > 1 ? ` (and ${blocked.length - 1} more frames)` : ''}; move it away and submit again`)
    }

    // Two submits writing one folder would each believe its frames are there.
    const unlock = await lockOutput(plan.outputDir, input.outputDir)
    try {
      // Running the same command again continues the job: frames the
      // journal vouches for are not rendered again.
      const started = Date.now()
      const journal = new Journal(plan.outputDir, renderKeyOf(spec), async () => {
        // `.blendnet/` was removed mid-job: take the lock again, if no one else has.
        await lockOutput(plan.outputDir, input.outputDir).catch((err: Error) => { say(`warning: ${err.message}`) })
      })
      const output = new OutputFolder(plan.outputDir, spec.settings, journal)
      const resume = await output.removeStaleTemps()
        .then(async () => await journal.check(frames, spec.settings.format))
        .catch((err: Error) => { throw new UsageError(`cannot read what is in --output "${input.outputDir}": ${err.message}`) })
      printResume(resume, frames.length, input.outputDir, journalPath(input.outputDir))
      await output.vouchFor(resume.done)
      // Files a frame will replace that no render of this job made (the
      // journal does not list them): said once, before anything is written.
      const journaled = new Set([...resume.done, ...resume.changed])
      const foreign = await output.present(frames.filter(f => !journaled.has(f)))
      if (foreign.length > 0) {
        say(`note: ${count(foreign.length, 'file')} in --output "${input.outputDir}" not made by this render will be replaced (${foreign.length === 1 ? 'frame' : 'frames'} ${formatFrameList(foreign)})`)
      }
      await progress.start({
        jobId: spec.jobId, scene: spec.settings.scene, blend: spec.blend.name, format: spec.settings.format,
        frames, chunks: spec.chunks.length, alreadyDone: [...resume.done], output: plan.outputDir
      })
      if (resume.done.size === frames.length) {
        const outcome = {
          succeeded: true, total: frames.length, done: frames.length, alreadyThere: frames.length, failedFrames: [], rejected: {}
        }
        progress.finish(outcome, Date.now() - started)
        printSummary(outcome, plan.outputDir, Date.now() - started)
        return await finishMovie()
      }

      // Ctrl-C ends the job like a timeout: the summary says what is done.
      // Caught from here on, so one that comes while the node starts still
      // gets its summary.
      let interrupted: string | undefined
      let cancel = (_reason: string): void => {}
      const stopOnSignal = (signal: string): void => {
        if (interrupted !== undefined) process.exit(130) // asked twice: now
        interrupted = signal
        cancel(`interrupted (${signal})`)
      }
      for (const name of stopSignals()) process.on(name, stopOnSignal)

      say(`coordinator ${swarmNode.peerId.toString()} listening on ${swarmNode.getMultiaddrs().map(String).join(' ')}`)
      say(allowedWorkers === undefined
        ? 'workers: any may claim (no --allow-worker list)'
        : `workers: only the ${count(allowedWorkers.size, 'peer')} of --allow-worker may claim`)
      const coordinator = new Coordinator({
        node: swarmNode,
        job: spec,
        output,
        alreadyDone: resume.done,
        timeoutMs,
        workerWaitMs,
        allowedWorkers,
        scheduling,
        priority,
        onEvent: progress.onEvent
      })
      progress.showLive()
      const running = coordinator.run()
      cancel = (reason) => { coordinator.cancel(reason) }
      if (interrupted !== undefined) cancel(`interrupted (${interrupted})`)
      const ran = await running
      await node.stop()
      await journal.close()
      // Only what is in the folder now, as it was written, counts as done.
      const outcome = outcomeInFolder(ran, await output.audit(), resume.done)
      progress.finish(outcome, Date.now() - started, interrupted)
      printSummary(outcome, plan.outputDir, Date.now() - started)
      const endedBySignal = interrupted !== undefined
      if (!endedBySignal) await progress.stayUp((stop) => { cancel = stop })
      if (endedBySignal) return 130
      if (!outcome.succeeded) throw new JobFailedError('')
      return await finishMovie()
    } finally {
      await progress.close()
      await unlock()
    }
  } finally {
    // Also when no job ran: a scene that cannot render, all frames there.
    await node.stop()
  }
}

/** The coordinator's node, started ahead of the job; stopped once. */
class StartingNode {
  private starting?: Promise<SwarmNode>
  private stopped = false

  constructor (private readonly create: () => Promise<SwarmNode>) {}

  start (): void {
    this.starting ??= this.create()
    this.starting.catch(() => {}) // awaited in started()
  }

  async started (): Promise<SwarmNode> {
    this.start()
    return await (this.starting as Promise<SwarmNode>)
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    const node = await this.starting?.catch(() => undefined)
    await node?.stop()
  }
}
