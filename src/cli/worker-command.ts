/**
 * `blendnet worker`: join the swarm and render whatever jobs appear.
 */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { findBlender } from '../blender/install.js'
import { ProcessChunkRenderer } from '../blender/driver.js'
import { healthSummary, probeBlender } from '../blender/probe.js'
import { parseDuration } from '../common/duration.js'
import { UsageError } from '../common/errors.js'
import { loadOrCreatePeerKey } from '../net/identity.js'
import { createSwarmNode } from '../net/node.js'
import { WorkDir } from '../worker/work-dir.js'
import { Worker } from '../worker/worker.js'
import {
  allLoopback, bootstrapAddrs, listenAddrs, listFlag, parse, stringFlag, type Options
} from './args.js'
import { say, untilSignal } from './console.js'

/** Node's timers cannot wait longer (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

export const WORKER_HELP = `usage: blendnet worker [options]

Joins the render swarm and renders chunks of any job announced on it.

options:
  --listen <multiaddr>     address to listen on (repeatable)
                           default /ip4/0.0.0.0/tcp/0
  --bootstrap <multiaddr>  a peer to join the swarm through, as printed by
                           another worker (repeatable); without it, peers on
                           the LAN are found by mDNS
  --blender <path>         the Blender to render with (default: $BLENDNET_BLENDER
                           or blender on PATH)
  --work-dir <dir>         scene cache, chunk folders and this worker's key
                           (default ~/.cache/blendnet/worker)
  --once                   leave after the first job joined has finished,
                           removing the work files
  --hang-timeout <duration>
                           stop a Blender that prints nothing for this long
                           and fail its chunk as hung (default 5m; 0 = never)
  --allow-scripts          take jobs submitted with --allow-scripts, letting
                           Blender run the Python stored in their files
                           (drivers, registered scripts): only for a swarm
                           whose submitters you trust
  --no-mdns                do not look for peers on the LAN
`

const OPTIONS: Options = {
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  blender: { type: 'string' },
  'work-dir': { type: 'string' },
  once: { type: 'boolean' },
  'allow-scripts': { type: 'boolean' },
  'hang-timeout': { type: 'string' },
  'no-mdns': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
}

function defaultWorkDir (): string {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache')
  return join(cache, 'blendnet', 'worker')
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
  const blender = await findBlender(stringFlag(parsed, 'blender'))
  // A Blender that cannot render must not claim anything (it says why).
  const capabilities = {
    ...await probeBlender(blender),
    scripts: parsed.values['allow-scripts'] === true
  }
  const workDir = await WorkDir.open(resolve(stringFlag(parsed, 'work-dir') ?? defaultWorkDir()))

  const key = await loadOrCreatePeerKey(workDir.keyPath)
  const mdns = parsed.values['no-mdns'] !== true && !allLoopback(listen)
  const node = await createSwarmNode({ privateKey: key, listen, bootstrap, mdns })
    .catch(async (err) => { await workDir.release(); throw err })
  const worker = new Worker({
    node, key, renderer: new ProcessChunkRenderer(blender),
    capabilities, workDir, once: parsed.values.once === true, hangTimeoutMs
  })
  await worker.start()

  say(`blendnet worker ${node.peerId.toString()}`)
  say(`  ${healthSummary(capabilities)}`)
  say(`  Blender at ${blender.path}, work dir ${workDir.root}`)
  say('  others can join through:')
  for (const addr of node.getMultiaddrs()) say(`    ${addr.toString()}`)
  if (bootstrap.length === 0 && !mdns) say('  (no --bootstrap and no mDNS: waiting for peers to dial in)')

  const signal = await Promise.race([untilSignal(), worker.done.then(() => undefined)])
  await worker.stop()
  await node.stop()
  await workDir.release()
  if (signal !== undefined) say(`worker stopped (${signal})`)
  else say('worker finished its job and removed its work files')
  return 0
}
