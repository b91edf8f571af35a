/**
 * `blendnet relay`: a peer with a reachable address that workers and
 * submitters behind NAT join the swarm through and are reached through
 * (src/net/relay-node.ts). It renders nothing and holds no job files.
 */
import { join, resolve } from 'node:path'
import { UsageError } from '../common/errors.js'
import { configDir, loadOrCreatePeerKey } from '../net/identity.js'
import { createRelayNode, RELAY_MAX_RESERVATIONS } from '../net/relay-node.js'
import { describeSwarm, resolveSwarmKey } from '../net/swarm-key.js'
import { listenAddrs, listFlag, parse, stringFlag, type Options } from './args.js'
import { say, untilSignal } from './console.js'
import { CONFIG_HELP } from './config-registry.js'
import { LOG_FILE_HELP, useLogFile } from './log-file.js'

export const DEFAULT_RELAY_LISTEN = '/ip4/0.0.0.0/tcp/4001'

export const RELAY_HELP = `usage: blendnet relay [options]

Runs a relay for peers behind NAT: workers and submits given its address
with --bootstrap join the swarm through it, take a slot on it, and are
reached through it when no direct connection is possible (they then try
a direct one by hole punching). Run it on a machine every peer can reach.
It carries the job's files and frames, so its bandwidth is the swarm's.

options:
  --listen <multiaddr>     address to listen on (repeatable; default
                           ${DEFAULT_RELAY_LISTEN}: a fixed port, so the
                           address peers were given survives a restart)
  --announce <multiaddr>   the address to give peers instead, e.g. the
                           public one of a port forward (repeatable)
  --key <file>             this relay's key, its peer ID (default:
                           relay.key in the config dir)
  --swarm-key <file>       relay only for the private swarm of this key
                           (default: $BLENDNET_SWARM_KEY, else swarm.key in
                           the config dir if there is one)
${LOG_FILE_HELP}${CONFIG_HELP}`

export const OPTIONS: Options = {
  listen: { type: 'string', multiple: true },
  announce: { type: 'string', multiple: true },
  key: { type: 'string' },
  'swarm-key': { type: 'string' },
  'log-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
}

export async function relayCommand (args: string[]): Promise<number> {
  const parsed = parse('relay', args, OPTIONS)
  if (parsed.values.help === true) { say(RELAY_HELP); return 0 }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`relay takes no file arguments (got "${parsed.positionals[0]}")`)
  }
  const listen = listenAddrs(listFlag(parsed, 'listen'), '--listen')
  if (listen.length === 0) listen.push(DEFAULT_RELAY_LISTEN)
  const announce = listenAddrs(listFlag(parsed, 'announce'), '--announce')
  for (const addr of announce) {
    if (addr.includes('/p2p/')) {
      throw new UsageError(`--announce "${addr}" must not name a peer; the relay adds its own /p2p/<peer id>`)
    }
  }
  const logFile = useLogFile(stringFlag(parsed, 'log-file'))
  const swarmKey = await resolveSwarmKey(stringFlag(parsed, 'swarm-key'))
  const keyPath = resolve(stringFlag(parsed, 'key') ?? join(configDir(), 'relay.key'))
  const { key, created } = await loadOrCreatePeerKey(keyPath)
  say(describeSwarm(swarmKey))

  const node = await createRelayNode({ privateKey: key, listen, announce, swarmKey: swarmKey?.psk })
  say(`blendnet relay ${node.peerId.toString()}`)
  say(`  key ${keyPath}${created ? ' (created now, mode 0600)' : ''}; up to ${RELAY_MAX_RESERVATIONS} peers behind NAT, no limit on relayed data or time`)
  if (logFile !== undefined) say(`  log ${logFile}`)
  say('  others can join through:')
  for (const addr of node.getMultiaddrs()) say(`    ${addr.toString()}`)

  const signal = await untilSignal()
  await node.stop()
  say(`relay stopped (${signal})`)
  return 0
}
