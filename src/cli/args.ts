/**
 * Flag parsing for every command, on node:util's parseArgs. Each value is
 * validated once, here, with a message naming the flag and the value.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { UsageError } from '../common/errors.js'
import { mergeSources, takeNegations, withConfigFlag, type ConfigContext } from './config.js'
import { configurableCommands } from './config-registry.js'

export type Options = NonNullable<ParseArgsConfig['options']>

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>
  positionals: string[]
}

/**
 * parseArgs refuses `--frames -5--1` (a value that starts with a dash);
 * we join every string flag with its value first, so negative frame
 * ranges can be written naturally.
 */
function joinValues (args: string[], options: Options): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : undefined
    const value = args[i + 1]
    if (name !== undefined && options[name]?.type === 'string' &&
      value !== undefined && !value.startsWith('--')) {
      out.push(`${args[i]}=${args[++i]}`)
    } else {
      out.push(args[i])
    }
  }
  return out
}

/**
 * The flags of `command`. For a command that allows config (main.ts
 * lists them), values also come from the environment and the config
 * file, under the command line's (src/cli/config.ts).
 */
export function parse (command: string, args: string[], options: Options,
  context: ConfigContext = {}): Parsed {
  if (!(context.commands ?? configurableCommands()).has(command)) {
    return parseFlags(command, args, options)
  }
  const { args: rest, off } = takeNegations(args, options)
  const flags = parseFlags(command, rest, withConfigFlag(options))
  flags.values = { ...flags.values, ...off }
  if (flags.values.help === true) return flags
  return { values: mergeSources(command, options, flags, context).values, positionals: flags.positionals }
}

function parseFlags (command: string, args: string[], options: Options): Parsed {
  let parsed
  try {
    parsed = parseArgs({
      args: joinValues(args, options), options, allowPositionals: true, strict: true, tokens: true
    })
  } catch (err) {
    const first = (err as Error).message.split('\n')[0]
    const flag = /Option '(--[\w-]+)/.exec(first)?.[1]
    const said = (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag !== undefined
      ? `${flag} needs a value`
      : first.replace(/^Unknown option '([^']+)'.*$/, 'unknown option $1')
    throw new UsageError(`${command}: ${said} (see blendnet ${command} --help)`)
  }
  // parseArgs keeps the last of a flag given twice; `--frames 1-3 --frames
  // 4-5` is more likely a slip than a wish to render only 4-5.
  const seen = new Map<string, string>()
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || options[token.name]?.type !== 'string' || options[token.name]?.multiple === true) continue
    const earlier = seen.get(token.name)
    if (earlier !== undefined) {
      throw new UsageError(`${command}: --${token.name} is given twice ("${earlier}" and "${token.value ?? ''}"); give it once`)
    }
    seen.set(token.name, token.value ?? '')
  }
  return { values: parsed.values, positionals: parsed.positionals } as Parsed
}

export function stringFlag (parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name]
  return typeof value === 'string' ? value : undefined
}

export function listFlag (parsed: Parsed, name: string): string[] {
  const value = parsed.values[name]
  return Array.isArray(value) ? value : []
}

export function positiveInt (text: string | undefined, flag: string,
  fallback: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${flag} must be a whole number of at least 1, not "${text}"`)
  }
  return n
}

/**
 * Multiaddrs to listen on (or, for a relay's --announce, to be reached
 * at): they must parse, and be TCP, the one transport a peer listens on.
 */
export function listenAddrs (values: string[], flag: string): string[] {
  const example = flag === '--announce' ? '/ip4/203.0.113.7/tcp/4001 or /dns4/relay.example.org/tcp/4001' : '/ip4/0.0.0.0/tcp/4001'
  for (const value of values) {
    let tcp: boolean
    try {
      tcp = multiaddr(value).getComponents().some(c => c.name === 'tcp')
    } catch {
      throw new UsageError(`${flag} "${value}" is not a multiaddr; write it like ${example}`)
    }
    if (!tcp) throw new UsageError(`${flag} "${value}" is not a TCP address, the only kind blendnet listens on; write it like ${example}`)
  }
  return values
}

/** Bootstrap peers must name the peer: /ip4/…/tcp/…/p2p/<peer id>. */
export function bootstrapAddrs (values: string[]): string[] {
  for (const value of values) {
    let hasPeer = false
    try {
      hasPeer = multiaddr(value).getComponents().some(c => c.name === 'p2p')
    } catch {
      throw new UsageError(`--bootstrap "${value}" is not a multiaddr; copy one of the addresses a worker prints`)
    }
    if (!hasPeer) {
      throw new UsageError(`--bootstrap "${value}" has no /p2p/<peer id> part; copy one of the addresses a worker prints`)
    }
    const id = multiaddr(value).getComponents().find(c => c.name === 'p2p')?.value ?? ''
    try {
      peerIdFromString(id)
    } catch {
      throw new UsageError(`--bootstrap "${value}" names "${id}", which is not a peer id; copy one of the addresses a worker prints`)
    }
  }
  return values
}

/**
 * An allow-list of peer IDs from a repeatable flag (commas also split);
 * undefined when the flag is absent: the swarm is open.
 */
export function peerIdSet (values: string[], flag: string): Set<string> | undefined {
  const ids = values.flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
  if (values.length === 0) return undefined
  if (ids.length === 0) throw new UsageError(`${flag} needs a peer ID, as \`blendnet id\` prints it`)
  for (const id of ids) {
    try {
      peerIdFromString(id)
    } catch {
      throw new UsageError(`${flag} "${id}" is not a peer ID; copy one as \`blendnet id\` or a worker prints it`)
    }
  }
  return new Set(ids)
}

/** True when every address is on the loopback interface. */
export function allLoopback (addrs: string[]): boolean {
  return addrs.length > 0 && addrs.every(a => /^\/ip4\/127\.|^\/ip6\/::1\//.test(a))
}
