/**
 * The commands whose flags can also be set by a config file and by
 * environment variables, and what those layers need to know of a flag:
 * its type from the command's options table, and whether it names a file,
 * a folder or a program, read from its help line (`--output <dir>`).
 */
import type { Options } from './args.js'

export type FlagValue = string | boolean | string[]
export type FlagValues = Record<string, FlagValue | undefined>
export type FlagOption = Options[string]

/** Where a flag's value came from, so that an error can name it. */
export type Origin =
  | { kind: 'flag' }
  | { kind: 'env', variable: string }
  | { kind: 'file', file: string, key: string }
  | { kind: 'default' }

/**
 * How a relative value is read in a config file: a `<dir>`, `<file>` or
 * `<path>` against the file's folder; a `<program>` (Blender) only when it
 * has a slash, as a bare name is looked up on PATH.
 */
export type PathKind = 'path' | 'path-or-program'

export interface ConfigurableCommand {
  options: Options
  paths: Map<string, PathKind>
}

/** Flags a config file or the environment cannot set. */
const COMMAND_LINE_ONLY = new Set(['help', 'config'])

const registry = new Map<string, ConfigurableCommand>()

/**
 * Lets a config file's `[command]` table, its top-level keys and the
 * BLENDNET_* variables set every flag of `options`.
 */
export function allowConfig (command: string, options: Options, help: string): void {
  registry.set(command, { options, paths: pathFlags(help) })
}

export function configurableCommand (command: string): ConfigurableCommand | undefined {
  return registry.get(command)
}

export function configurableCommands (): ReadonlyMap<string, ConfigurableCommand> {
  return registry
}

/** The flags of a table that a config file or the environment may set. */
export function settableFlags (options: Options): string[] {
  return Object.keys(options).filter(name => !COMMAND_LINE_ONLY.has(name))
}

const HELP_LINE = /^\s*--([a-z0-9][a-z0-9-]*)[ =]<(dir|file|folder|path|program)>/gim

/** `--output <dir>` in a help text: the flags that name files or folders. */
export function pathFlags (help: string): Map<string, PathKind> {
  const paths = new Map<string, PathKind>()
  for (const [, name, meta] of help.matchAll(HELP_LINE)) {
    paths.set(name, meta.toLowerCase() === 'program' ? 'path-or-program' : 'path')
  }
  return paths
}

/** BLENDNET_WORKER_WORK_DIR for `work-dir` of `worker`, BLENDNET_WORK_DIR for any command. */
export function envName (flag: string, command?: string): string {
  const parts = command === undefined ? [flag] : [command, flag]
  return `BLENDNET_${parts.join('_').replace(/-/g, '_').toUpperCase()}`
}

/** The candidate nearest to a mistyped word, if it is near enough to be meant. */
export function closest (word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(word.length / 4)) + 1
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) { best = candidate; bestDistance = distance }
  }
  return best
}

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)
      row.push(Math.min(previous[j] + 1, row[j - 1] + 1, substitution))
    }
    previous = row
  }
  return previous[b.length]
}

/** " (did you mean X?)" or nothing. */
export function suggestion (word: string, candidates: Iterable<string>): string {
  const near = closest(word, candidates)
  return near === undefined ? '' : ` (did you mean ${near}?)`
}

/** The help line of --config, for every command that allows config. */
export const CONFIG_HELP = `  --config <file>          read options from this TOML file (default:
                           ./blendnet.toml, else config.toml in the config
                           dir); see docs/config.md
`
