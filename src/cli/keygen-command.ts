/**
 * `blendnet keygen`: a new swarm key, for a private swarm.
 */
import { resolve } from 'node:path'
import { UsageError } from '../common/errors.js'
import { defaultSwarmKeyPath, writeNewSwarmKey } from '../net/swarm-key.js'
import { parse, type Options } from './args.js'
import { say } from './console.js'

export const KEYGEN_HELP = `usage: blendnet keygen [<file>]

Writes a new random swarm key (mode 0600) to <file>, by default swarm.key
in the config dir, where worker and submit look for one. Never replaces
an existing file. Every peer of a private swarm needs the same key; peers
without it cannot connect to the swarm at all.
`

const OPTIONS: Options = {
  help: { type: 'boolean', short: 'h' }
}

export async function keygenCommand (args: string[]): Promise<number> {
  const parsed = parse('keygen', args, OPTIONS)
  if (parsed.values.help === true) { say(KEYGEN_HELP); return 0 }
  if (parsed.positionals.length > 1) {
    throw new UsageError(`keygen writes one file, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}`)
  }
  const path = resolve(parsed.positionals[0] ?? defaultSwarmKeyPath())
  const key = await writeNewSwarmKey(path)
  say(`wrote a new swarm key to ${path} (fingerprint ${key.fingerprint})`)
  say('copy it, over a channel you trust, to every peer of the swarm: as swarm.key in its config dir, or give it with --swarm-key FILE or BLENDNET_SWARM_KEY')
  return 0
}
