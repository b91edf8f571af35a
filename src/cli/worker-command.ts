/**
 * `blendnet worker`: join the swarm and render whatever jobs appear.
 */
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { findBlender } from '../blender/install.js'
import { ProcessChunkRenderer } from '../blender/driver.js'
import { SessionChunkRenderer } from '../blender/session.js'
import { healthSummary, probeBlender } from '../blender/probe.js'
import { useBytecodeCache } from '../blender/bytecode.js'
import { chooseSandbox, newCacheDir, parseSandboxMode } from '../blender/sandbox.js'
import { parseDuration } from '../common/duration.js'
import { parseSize } from '../common/sizes.js'
import { UsageError } from '../common/errors.js'
import { userCacheDir } from '../common/paths.js'
import { openIdentity } from '../net/identity.js'
import { createSwarmNode } from '../net/node.js'
import { describeSwarm, resolveSwarmKey } from '../net/swarm-key.js'
import { standByForSubmitters } from '../worker/standby-trigger.js'
import { WorkDir } from '../worker/work-dir.js'
import { Worker } from '../worker/worker.js'
import {
  allLoopback, bootstrapAddrs, listenAddrs, listFlag, parse, peerIdSet, stringFlag, type Options
} from './args.js'
import { say, untilSignal } from './console.js'
import { CONFIG_HELP } from './config-registry.js'
import { LOG_FILE_HELP, useLogFile } from './log-file.js'

/** Node's timers cannot wait longer (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

export const WORKER_HELP = `usage: blendnet worker [options]

Joins the render swarm and renders chunks of any job announced on it.

options:
  --listen <multiaddr>     address to listen on (repeatable)
                           default /ip4/0.0.0.0/tcp/0
  --bootstrap <multiaddr>  a peer to join the swarm through, as printed by
                           another worker or a relay (repeatable); it is
                           dialled again whenever the connection drops;
                           without it, peers on the LAN are found by mDNS
  --blender <program>      the Blender to render with (default: $BLENDNET_BLENDER
                           or blender on PATH)
  --work-dir <dir>         scene cache and chunk folders (default
                           ~/.cache/blendnet/worker); when given, also this
                           worker's key, <dir>/peer.key
  --key <file>             this worker's key, its peer ID (default: the
                           --work-dir's, else identity.key in the config dir)
  --swarm-key <file>       join only the private swarm of this key (default:
                           $BLENDNET_SWARM_KEY, else swarm.key in the config
                           dir if there is one); see blendnet keygen
  --once                   leave after the first job joined has finished,
                           removing the work files
  --hang-timeout <duration>
                           stop a Blender that prints nothing for this long
                           and fail its chunk as hung (default 5m; 0 = never)
  --allow-coordinator <peer id>
                           take jobs only from this submitter (repeatable, or
                           comma-separated); without it, from any peer
  --max-job-size <size>    decline jobs whose files are larger, e.g. 50GiB
                           (default: the free space of the work dir, less
                           1 GiB for frames)
  --allow-scripts          take jobs submitted with --allow-scripts, letting
                           Blender run the Python stored in their files
                           (drivers, registered scripts): only for a swarm
                           whose submitters you trust
  --sandbox auto|bwrap|none
                           run Blender under bubblewrap: no network, no home,
                           a read-only system, limits (default auto: when
                           bwrap works here; bwrap: refuse to start without)
  --no-warm                start a fresh Blender for every chunk instead of
                           keeping one Blender per job with its scene loaded
  --no-mdns                do not look for peers on the LAN
${LOG_FILE_HELP}${CONFIG_HELP}`

export const OPTIONS: Options = {
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  blender: { type: 'string' },
  'work-dir': { type: 'string' },
  key: { type: 'string' },
  'swarm-key': { type: 'string' },
  once: { type: 'boolean' },
  'allow-scripts': { type: 'boolean' },
  'hang-timeout': { type: 'string' },
  'allow-coordinator': { type: 'string', multiple: true },
  'max-job-size': { type: 'string' },
  sandbox: { type: 'string' },
  'no-mdns': { type: 'boolean' },
  'no-warm': { type: 'boolean' },
  'log-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
}

function defaultWorkDir (): string {
  return join(userCacheDir(), 'worker')
}

export async function workerCommand (args: string[]): Promise<number> {
  const parsed = parse('worker', args, OPTIONS)
  if (parsed.values.help === true) { say(WORKER_HELP); return 0 }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`worker takes no file arguments (got "${parsed.positionals[0]}")`)
  }
  const listen = listenAddrs(listFlag(parsed, 'listen'), '--listen')
  if (listen.length === 0) listen.push('/ip4/0.0.0.0/tcp/0')
  const bootstrap = bootstrapAddrs(listFlag(parsed, 'bootstrap'))
  const hangText = stringFlag(parsed, 'hang-timeout')
  const hangTimeoutMs = hangText === undefined ? undefined : parseDuration(hangText, '--hang-timeout', { allowZero: true })
  if (hangTimeoutMs !== undefined && hangTimeoutMs > MAX_TIMER_MS) {
    throw new UsageError(`--hang-timeout "${hangText}" is longer than 24 days; use 0 to never stop a silent Blender`)
  }
  const sizeText = stringFlag(parsed, 'max-job-size')
  const maxJobBytes = sizeText === undefined ? undefined : parseSize(sizeText, '--max-job-size')
  const allowedCoordinators = peerIdSet(listFlag(parsed, 'allow-coordinator'), '--allow-coordinator')
  const sandboxMode = parseSandboxMode(stringFlag(parsed, 'sandbox'))
  useLogFile(stringFlag(parsed, 'log-file'))
  const swarmKey = await resolveSwarmKey(stringFlag(parsed, 'swarm-key'))
  const workDirFlag = stringFlag(parsed, 'work-dir')
  // A worker given its own --work-dir keeps its key there, so that several
  // workers on one machine have their own peer IDs; a new work dir is made.
  const keyFlag = stringFlag(parsed, 'key')
  const identity = keyFlag !== undefined || workDirFlag === undefined
    ? await openIdentity('worker', keyFlag)
    : await openIdentity('worker', WorkDir.keyPath(resolve(workDirFlag)), true)
  const { key } = identity
  say(describeSwarm(swarmKey))
  const blender = await findBlender(stringFlag(parsed, 'blender'))
  const { sandbox, summary: sandboxSummary } = await chooseSandbox(sandboxMode, blender)
  // Unsandboxed too, Blender's bytecode lives in a folder of this worker's own.
  if (sandbox === undefined) useBytecodeCache(await newCacheDir(tmpdir(), 'bytecode'))
  // A Blender that cannot render must not claim anything (it says why).
  const capabilities = {
    ...await probeBlender(blender, { sandbox }),
    scripts: parsed.values['allow-scripts'] === true
  }
  const workDir = await WorkDir.open(resolve(workDirFlag ?? defaultWorkDir()))

  const mdns = parsed.values['no-mdns'] !== true && !allLoopback(listen)
  const node = await createSwarmNode({ privateKey: key, listen, bootstrap, mdns, swarmKey: swarmKey?.psk })
    .catch(async (err) => { await workDir.release(); throw err })
  const warm = parsed.values['no-warm'] !== true
  const renderer = warm
    ? new SessionChunkRenderer(blender, { sandbox })
    : new ProcessChunkRenderer(blender, { sandbox })
  const worker = new Worker({
    node, key, renderer,
    capabilities, workDir, once: parsed.values.once === true, hangTimeoutMs, allowedCoordinators, maxJobBytes
  })
  await worker.start()
  if (renderer instanceof SessionChunkRenderer) {
    standByForSubmitters(node, renderer, workDir, allowedCoordinators)
  }

  say(`blendnet worker ${node.peerId.toString()}`)
  say(`  ${healthSummary(capabilities)}; ${sandboxSummary}; ` +
    (warm ? 'one warm Blender per job' : 'a fresh Blender per chunk (--no-warm)'))
  say(`  Blender at ${blender.path}, work dir ${workDir.root}, key ${identity.path}`)
  say(allowedCoordinators === undefined
    ? '  jobs: from any submitter (no --allow-coordinator list)'
    : `  jobs: only from ${[...allowedCoordinators].join(', ')}`)
  say('  others can join through:')
  for (const addr of node.getMultiaddrs()) say(`    ${addr.toString()}`)
  if (bootstrap.length === 0 && !mdns) say('  (no --bootstrap and no mDNS: waiting for peers to dial in)')

  let signal: string | undefined
  try {
    signal = await Promise.race([untilSignal(), worker.done.then(() => undefined)])
    await worker.stop()
    await node.stop()
  } finally {
    // Fail to destroy: whatever ends the worker, no scene, dependency or
    // render of anyone's job stays behind on this machine.
    await workDir.removeWorkFiles()
    await workDir.release()
  }
  if (worker.fatal !== undefined) {
    say(`worker stopped: ${worker.fatal.message}; its work files are removed`)
    return 1
  }
  say(signal !== undefined
    ? `worker stopped (${signal}) and removed its work files`
    : 'worker finished its job and removed its work files')
  return 0
}
