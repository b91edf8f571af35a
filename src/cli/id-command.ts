/**
 * `blendnet id`: this peer's ID and where its key lives.
 */
import { resolve } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { UsageError } from '../common/errors.js'
import { defaultKeyPath, loadOrCreatePeerKey } from '../net/identity.js'
import { parse, stringFlag, type Options } from './args.js'
import { say } from './console.js'

export const ID_HELP = `usage: blendnet id [--key <file>]

Prints the peer ID that worker and submit run under, and the file its key
is in, creating the key (mode 0600) if there is none yet.

options:
  --key <file>             the key to read (default: identity.key in the
                           config dir, $BLENDNET_CONFIG_DIR or
                           $XDG_CONFIG_HOME/blendnet or ~/.config/blendnet);
                           a worker started with --work-dir DIR runs under
                           DIR/peer.key
`

const OPTIONS: Options = {
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
}

export async function idCommand (args: string[]): Promise<number> {
  const parsed = parse('id', args, OPTIONS)
  if (parsed.values.help === true) { say(ID_HELP); return 0 }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`id takes no file arguments (got "${parsed.positionals[0]}"); name a key with --key`)
  }
  const path = resolve(stringFlag(parsed, 'key') ?? defaultKeyPath())
  const { key, created } = await loadOrCreatePeerKey(path)
  say(peerIdFromPrivateKey(key).toString())
  say(`key ${path}${created ? ' (created now, mode 0600)' : ''}`)
  return 0
}
