/**
 * One value per flag from four layers: the command line, then the
 * environment, then the config file, then the options table's default.
 * Each value keeps its origin, so that the command's own checks, written
 * for flags (`--timeout "2x" is not a duration`), name the file and key or
 * the variable instead when the value came from there.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Options, Parsed } from './args.js'
import { envLayer, envVariable } from './config-env.js'
import { fileLayer, locateConfigFile, readConfigFile, type NamedConfig } from './config-file.js'
import {
  configurableCommands, settableFlags, type ConfigurableCommand, type FlagValue, type FlagValues,
  type Origin
} from './config-registry.js'

/** Where a run looks for its environment and ./blendnet.toml. */
export interface ConfigContext {
  env?: NodeJS.ProcessEnv
  cwd?: string
  commands?: ReadonlyMap<string, ConfigurableCommand>
}

/** The merged flags of a run, with where each came from. */
export interface Sources {
  values: FlagValues
  origins: Record<string, Origin>
  /** The config file read, if any. */
  file?: string
}

/** The options a configurable command parses: its own, and --config. */
export function withConfigFlag (options: Options): Options {
  const plain: Options = {}
  // Defaults are the lowest layer, applied after the file: parseArgs
  // would otherwise make every default look given on the command line.
  for (const [name, { default: _, ...option }] of Object.entries(options)) plain[name] = option
  return { ...plain, config: { type: 'string' } }
}

/**
 * `--no-once` turns off a switch a file or variable turned on, and
 * `--mdns` a `no-mdns`; the last of `--X` and its opposite wins.
 */
export function takeNegations (args: string[], options: Options): { args: string[], off: FlagValues } {
  const off: FlagValues = {}
  const kept: string[] = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') { kept.push(...args.slice(i)); break }
    const name = args[i].startsWith('--') ? args[i].slice(2) : undefined
    const target = name === undefined ? undefined : oppositeOf(name, options)
    if (target !== undefined) {
      off[target] = false
      continue
    }
    if (name !== undefined) delete off[name]
    kept.push(args[i])
  }
  return { args: kept, off }
}

function oppositeOf (name: string, options: Options): string | undefined {
  if (name in options) return undefined
  const target = name.startsWith('no-') ? name.slice(3) : `no-${name}`
  return options[target]?.type === 'boolean' ? target : undefined
}

/** The flags of `command` with the environment, the config file and the defaults under them. */
export function mergeSources (command: string, options: Options, flags: Parsed,
  context: ConfigContext = {}): Sources {
  const env = context.env ?? process.env
  const cwd = context.cwd ?? process.cwd()
  const commands = context.commands ?? configurableCommands()
  const own = commands.get(command) ?? { options, paths: new Map() }

  const file = locateConfigFile(namedConfig(command, flags, env), cwd, env)
  const fromFile = file === undefined
    ? { values: {}, origins: {} }
    : fileLayer(file, readConfigFile(file), command, commands)
  const fromEnv = envLayer(command, own, env, commands)

  const sources: Sources = { values: { ...flags.values }, origins: {}, file }
  delete sources.values.config
  for (const name of Object.keys(flags.values)) sources.origins[name] = { kind: 'flag' }
  for (const flag of settableFlags(options)) {
    if (sources.values[flag] !== undefined) continue
    for (const layer of [fromEnv, fromFile]) {
      if (layer.values[flag] === undefined) continue
      sources.values[flag] = layer.values[flag]
      sources.origins[flag] = layer.origins[flag]
      break
    }
    const fallback = options[flag].default
    if (sources.values[flag] === undefined && fallback !== undefined) {
      sources.values[flag] = fallback as FlagValue
      sources.origins[flag] = { kind: 'default' }
    }
  }
  remember(sources)
  return sources
}

function namedConfig (command: string, flags: Parsed,
  env: NodeJS.ProcessEnv): NamedConfig | undefined {
  const flag = flags.values.config
  if (typeof flag === 'string') return { path: flag, by: '--config' }
  const found = envVariable('config', command, env)
  return found === undefined ? undefined : { path: found.text, by: found.variable }
}

const runs = new AsyncLocalStorage<{ sources?: Sources }>()

function remember (sources: Sources): void {
  const run = runs.getStore()
  if (run !== undefined) run.sources = sources
}

/**
 * Runs a command so that an error about a flag whose value came from the
 * config file or the environment names that file and key, or variable.
 */
export async function namingConfigSources<T> (command: () => Promise<T>): Promise<T> {
  const run: { sources?: Sources } = {}
  try {
    return await runs.run(run, command)
  } catch (err) {
    if (run.sources !== undefined && err instanceof Error && err.message !== '') {
      err.message = nameSources(err.message, run.sources)
    }
    throw err
  }
}

/**
 * `--timeout "2x" is not a duration` becomes `/home/ana/blendnet.toml:
 * submit.timeout "2x" is not a duration` when the value came from there.
 * A flag is renamed where the message starts with it or gives its value
 * right after it, not where the message merely advises it. A message that
 * names no flag but quotes such a value gets the value's source appended.
 */
export function nameSources (message: string, sources: Sources): string {
  let named = message
  let fromFile: string | undefined
  for (const [flag, origin] of Object.entries(sources.origins)) {
    if (origin.kind !== 'env' && origin.kind !== 'file') continue
    const label = origin.kind === 'env' ? origin.variable : origin.key
    const values = valuesOf(sources.values[flag])
    const renamed = named.replace(new RegExp(`(?<![\\w-])--${escapeRegExp(flag)}(?![\\w-])`, 'g'),
      (mention, at: number, whole: string) => {
        const after = whole.slice(at + mention.length)
        const aboutValue = at === 0 || values.some(v => after.startsWith(` ${v}`) || after.startsWith(` "${v}`))
        return aboutValue ? label : mention
      })
    if (renamed !== named && origin.kind === 'file') fromFile = origin.file
    named = renamed
  }
  if (named !== message) return fromFile === undefined ? named : `${fromFile}: ${named}`
  const quoted = quotedSource(message, sources)
  if (quoted === undefined) return message
  return message.replace(/\.?$/, ` (from ${quoted})$&`)
}

/** The source whose value the message quotes (the longest such value). */
function quotedSource (message: string, sources: Sources): string | undefined {
  let best: { label: string, length: number } | undefined
  for (const [flag, origin] of Object.entries(sources.origins)) {
    if (origin.kind !== 'env' && origin.kind !== 'file') continue
    for (const value of valuesOf(sources.values[flag])) {
      const quoted = message.includes(`"${value}"`) || (value.includes('/') && message.includes(value))
      if (!quoted || (best !== undefined && best.length >= value.length)) continue
      const label = origin.kind === 'env' ? origin.variable : `${origin.key} in ${origin.file}`
      best = { label, length: value.length }
    }
  }
  return best?.label
}

function valuesOf (value: FlagValues[string]): string[] {
  return [value].flat().filter((v): v is string => typeof v === 'string' && v !== '')
}

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
