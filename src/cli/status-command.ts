/**
 * `blendnet status`: joins the swarm as a light peer (no Blender, a
 * one-off key, no listening port unless asked), listens to the jobs
 * topic for a few seconds and lists the workers it heard: peer, Blender
 * version, what each can render, idle or busy on which job.
 */
import { JOBS_TOPIC, PRESENCE_INTERVAL_MS } from '../common/constants.js'
import { parseDuration } from '../common/duration.js'
import { UsageError } from '../common/errors.js'
import { logger } from '../common/log.js'
import { validateSwarmMessage } from '../net/gossip.js'
import { loadOrCreatePeerKey, newPeerKey } from '../net/identity.js'
import { createSwarmNode, type SwarmNode } from '../net/node.js'
import { describeSwarm, resolveSwarmKey } from '../net/swarm-key.js'
import {
  allLoopback, bootstrapAddrs, listenAddrs, listFlag, parse, positiveInt, stringFlag, type Options
} from './args.js'
import { count, printable, say } from './console.js'
import { CONFIG_HELP } from './config-registry.js'
import { describeCapabilities, formatTable, SwarmView } from './swarm-view.js'

const log = logger('status')

/** A little longer than workers take between two presence messages. */
const DEFAULT_WAIT_MS = PRESENCE_INTERVAL_MS + 1000

export const STATUS_HELP = `usage: blendnet status [options]

Joins the swarm for a few seconds and lists the workers it hears from:
peer ID, Blender version, what each can render, idle or busy on which job.
Needs no Blender. Exits 1 when it reaches no peer at all.

options:
  --bootstrap <multiaddr>  a peer to join the swarm through, as a worker prints
                           it (repeatable); without it, peers on the LAN are
                           found by mDNS
  --wait <duration>        how long to listen (default ${DEFAULT_WAIT_MS / 1000}s; workers speak every
                           ${PRESENCE_INTERVAL_MS / 1000}s)
  --min-workers <n>        stop as soon as n workers are heard; exit 1 if fewer
                           are by the end of --wait
  --json                   print one JSON object instead of a table
  --swarm-key <file>       join the private swarm of this key (default:
                           $BLENDNET_SWARM_KEY, else swarm.key in the config
                           dir if there is one)
  --key <file>             run under this key (default: a one-off key)
  --listen <multiaddr>     also listen here (default: dial out only)
  --no-mdns                do not look for peers on the LAN
${CONFIG_HELP}`

export const OPTIONS: Options = {
  bootstrap: { type: 'string', multiple: true },
  listen: { type: 'string', multiple: true },
  wait: { type: 'string' },
  'min-workers': { type: 'string' },
  json: { type: 'boolean' },
  'swarm-key': { type: 'string' },
  key: { type: 'string' },
  'no-mdns': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
}

export async function statusCommand (args: string[]): Promise<number> {
  const parsed = parse('status', args, OPTIONS)
  if (parsed.values.help === true) { say(STATUS_HELP); return 0 }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`status takes no file arguments (got "${parsed.positionals[0]}")`)
  }
  const bootstrap = bootstrapAddrs(listFlag(parsed, 'bootstrap'))
  const listen = listenAddrs(listFlag(parsed, 'listen'), '--listen')
  const waitText = stringFlag(parsed, 'wait')
  const waitMs = waitText === undefined ? DEFAULT_WAIT_MS : parseDuration(waitText, '--wait')
  const minText = stringFlag(parsed, 'min-workers')
  const minWorkers = minText === undefined ? undefined : positiveInt(minText, '--min-workers', 1)
  const json = parsed.values.json === true
  const swarmKey = await resolveSwarmKey(stringFlag(parsed, 'swarm-key'))
  const keyPath = stringFlag(parsed, 'key')
  const key = keyPath === undefined ? await newPeerKey() : (await loadOrCreatePeerKey(keyPath)).key
  if (!json) say(describeSwarm(swarmKey))

  // mDNS only where there is a LAN to search: not when told to use loopback.
  const mdns = parsed.values['no-mdns'] !== true && !allLoopback(bootstrap) && !allLoopback(listen)
  // It only listens: without both, no peer would ever reach it.
  if (bootstrap.length === 0 && !mdns) {
    throw new UsageError('status has no way to find the swarm without --bootstrap (or mDNS, off here): give it a peer\'s address with --bootstrap')
  }
  // It only listens to gossip: a relay slot would outlive it for hours.
  const node = await createSwarmNode({
    privateKey: key, listen, bootstrap, mdns, swarmKey: swarmKey?.psk, reachableThroughRelays: false
  })
  const started = Date.now()
  let reachedPeer = false
  node.addEventListener('peer:connect', () => { reachedPeer = true })
  const view = await hearWorkers(node, waitMs, minWorkers)
  const connected = new Set(node.getConnections().map(c => c.remotePeer.toString())).size
  reachedPeer ||= connected > 0
  await node.stop()

  if (!reachedPeer) {
    const where = bootstrap.length > 0
      ? `through ${bootstrap.join(', ')}`
      : mdns ? 'on the LAN by mDNS' : 'without --bootstrap or mDNS'
    process.stderr.write(`blendnet: status reached no peer ${where} in ${waitMs / 1000}s; check that a worker runs there${swarmKey === undefined ? '' : ' with the same swarm key'}\n`)
    return 1
  }
  print(view, json, connected, Date.now() - started)
  if (minWorkers !== undefined && view.workers.size < minWorkers) {
    process.stderr.write(`blendnet: heard ${count(view.workers.size, 'worker')} in ${waitMs / 1000}s, fewer than --min-workers ${minWorkers}\n`)
    return 1
  }
  return 0
}

/** Listens to the jobs topic until the wait is over or enough workers spoke. */
async function hearWorkers (node: SwarmNode, waitMs: number, minWorkers?: number): Promise<SwarmView> {
  const pubsub = node.services.pubsub
  let enough = (): void => {}
  const done = new Promise<void>((resolve) => { enough = resolve })
  const view = new SwarmView(() => {
    if (minWorkers !== undefined && view.workers.size >= minWorkers) enough()
  })
  pubsub.topicValidators.set(JOBS_TOPIC, (peer, msg) =>
    validateSwarmMessage(msg, (reason) => { log.debug('rejected gossip', { peer: peer.toString(), reason }) }))
  pubsub.addEventListener('message', (evt) => { view.onGossip(evt.detail) })
  pubsub.subscribe(JOBS_TOPIC)
  const timer = setTimeout(enough, waitMs)
  await done
  clearTimeout(timer)
  return view
}

function print (view: SwarmView, json: boolean, connected: number, waitedMs: number): void {
  if (json) {
    process.stdout.write(JSON.stringify(view.toJson(connected, waitedMs), null, 2) + '\n')
    return
  }
  const workers = view.sortedWorkers()
  say(`${count(workers.length, 'worker')} heard in ${(waitedMs / 1000).toFixed(1)}s (connected to ${count(connected, 'peer')})`)
  if (workers.length > 0) {
    say(formatTable([
      ['PEER', 'BLENDER', 'CAN RENDER', 'STATE'],
      ...workers.map(w => [
        w.peer, printable(w.capabilities.blenderVersion, 40), describeCapabilities(w.capabilities), view.stateOf(w)
      ])
    ]))
  }
  for (const job of view.jobs.values()) {
    const frames = job.framesTotal === undefined ? '' : `${job.framesDone ?? 0} of ${count(job.framesTotal, 'frame')} done, `
    say(`job ${printable(job.id, 80)}: scene "${printable(job.scene, 60)}" from ${job.coordinator}, ${frames}${count(job.openChunks, 'open chunk')}`)
  }
}
