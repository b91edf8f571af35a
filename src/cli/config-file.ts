/**
 * The config file: TOML, with a table per command (`[worker]`,
 * `[submit]`, ...) and top-level keys shared by every command that has
 * that flag. Keys are the flag names. The whole file is checked on every
 * run, so a typo in any table is an error naming the file and the key.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { parse as parseToml, TomlError } from 'smol-toml'
import { fileProblem, UsageError } from '../common/errors.js'
import { configDir } from '../net/identity.js'
import {
  settableFlags, suggestion, type ConfigurableCommand, type FlagOption,
  type FlagValue, type FlagValues, type Origin, type PathKind
} from './config-registry.js'

/** The file found in the folder blendnet runs from. */
export const LOCAL_CONFIG_NAME = 'blendnet.toml'
/** The file in the user's config dir. */
export const USER_CONFIG_NAME = 'config.toml'

export interface FileLayer {
  values: FlagValues
  origins: Record<string, Origin>
}

/** A config file someone asked for by name, and how they named it. */
export interface NamedConfig {
  path: string
  /** `--config` or the variable that named it. */
  by: string
}

/**
 * The config file of this run: the one named, else ./blendnet.toml, else
 * config.toml in the config dir. A named file must exist; the others are
 * optional.
 */
export function locateConfigFile (named: NamedConfig | undefined, cwd: string,
  env: NodeJS.ProcessEnv): string | undefined {
  if (named !== undefined) {
    const path = resolve(cwd, named.path)
    if (!existsSync(path)) throw new UsageError(`${named.by} ${path} does not exist`)
    return path
  }
  return [join(cwd, LOCAL_CONFIG_NAME), join(configDir(env), USER_CONFIG_NAME)]
    .find(path => existsSync(path))
}

/** The file's tables, or a UsageError naming the file and what is wrong. */
export function readConfigFile (path: string): Record<string, unknown> {
  let text: string
  try {
    if (statSync(path).isDirectory()) throw new UsageError(`config file ${path} is a folder, not a file`)
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError(`cannot read config file ${path}: ${fileProblem(err)}`)
  }
  try {
    return parseToml(text) as Record<string, unknown>
  } catch (err) {
    if (!(err instanceof TomlError)) throw err
    const problem = err.message.replace(/^Invalid TOML document: /, '').split('\n')[0]
    throw new UsageError(`${path} is not valid TOML: ${problem} at line ${err.line}, column ${err.column}`)
  }
}

/**
 * What the file sets for `command`: its own table over the top-level
 * keys. Every table and key of the file is checked first.
 */
export function fileLayer (path: string, doc: Record<string, unknown>, command: string,
  commands: ReadonlyMap<string, ConfigurableCommand>): FileLayer {
  checkDocument(path, doc, commands)
  const layer: FileLayer = { values: {}, origins: {} }
  const own = commands.get(command)
  if (own === undefined) return layer
  const table = isTable(doc[command]) ? doc[command] : {}
  for (const flag of settableFlags(own.options)) {
    const [raw, key] = flag in table ? [table[flag], `${command}.${flag}`] : [doc[flag], flag]
    if (raw === undefined) continue
    layer.values[flag] = fileValue(raw, own.options[flag], own.paths.get(flag), { file: path, key })
    layer.origins[flag] = { kind: 'file', file: path, key }
  }
  return layer
}

/** Unknown tables and keys, and values of the wrong type, anywhere in the file. */
function checkDocument (path: string, doc: Record<string, unknown>,
  commands: ReadonlyMap<string, ConfigurableCommand>): void {
  const shared = sharedFlags(commands)
  const tables = [...commands.keys()].map(command => `[${command}]`)
  for (const [key, raw] of Object.entries(doc)) {
    const command = commands.get(key)
    if (command !== undefined) {
      checkTable(path, key, raw, command)
    } else if (shared.has(key)) {
      for (const [option, kind] of shared.get(key) ?? []) {
        fileValue(raw, option, kind, { file: path, key })
      }
    } else if (isTable(raw)) {
      throw new UsageError(`${path}: [${key}] is not a command with options; ` +
        `the tables are ${tables.join(', ')}${suggestion(`[${key}]`, tables)}`)
    } else {
      throw new UsageError(`${path}: ${key} is not an option of ` +
        `${[...commands.keys()].join(', ')}${suggestion(key, shared.keys())}`)
    }
  }
}

/** Each top-level key a file may hold: a flag of one command or more. */
function sharedFlags (commands: ReadonlyMap<string, ConfigurableCommand>):
Map<string, Array<[FlagOption, PathKind | undefined]>> {
  const shared = new Map<string, Array<[FlagOption, PathKind | undefined]>>()
  for (const { options, paths } of commands.values()) {
    for (const flag of settableFlags(options)) {
      shared.set(flag, [...shared.get(flag) ?? [], [options[flag], paths.get(flag)]])
    }
  }
  return shared
}

function checkTable (path: string, command: string, raw: unknown,
  own: ConfigurableCommand): void {
  if (!isTable(raw)) {
    throw new UsageError(`${path}: ${command} must be a table ([${command}]), not ${describe(raw)}`)
  }
  const flags = settableFlags(own.options)
  for (const [flag, value] of Object.entries(raw)) {
    if (!flags.includes(flag)) {
      throw new UsageError(`${path}: ${command}.${flag} is not an option of ` +
        `blendnet ${command}${suggestion(flag, flags)}`)
    }
    fileValue(value, own.options[flag], own.paths.get(flag), { file: path, key: `${command}.${flag}` })
  }
}

/**
 * A TOML value as the flag's value: a boolean for a switch, a string (or
 * a number, written as on the command line) otherwise, a list of them for
 * a repeatable flag. Paths are made absolute against the file's folder.
 */
function fileValue (raw: unknown, option: FlagOption, kind: PathKind | undefined,
  at: { file: string, key: string }): FlagValue {
  const fail = (problem: string): never => { throw new UsageError(`${at.file}: ${at.key} ${problem}`) }
  if (option.type === 'boolean') {
    return typeof raw === 'boolean' ? raw : fail(`must be true or false, not ${describe(raw)}`)
  }
  const scalar = (item: unknown, expected: string, holding = ''): string => {
    if (typeof item === 'number') return String(item)
    if (typeof item !== 'string') return fail(`${expected}, not ${holding}${describe(item)}`)
    return kind === undefined ? item : fromFileFolder(item, kind, dirname(at.file))
  }
  if (option.multiple !== true) return scalar(raw, 'must be a string')
  if (!Array.isArray(raw)) return [scalar(raw, 'must be a string or a list of strings')]
  return raw.map(item => scalar(item, 'must be a list of strings', 'a list holding '))
}

/** `~/x` is in the home folder; a relative path is next to the file. */
function fromFileFolder (value: string, kind: PathKind, folder: string): string {
  if (value === '') return value
  if (value === '~' || value.startsWith('~/')) return join(homedir(), value.slice(1))
  if (isAbsolute(value) || (kind === 'path-or-program' && !value.includes('/'))) return value
  return resolve(folder, value)
}

function isTable (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

/** A TOML value as a user would recognise it in an error. */
function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return 'a list'
  if (value instanceof Date) return 'a date'
  if (isTable(value)) return 'a table'
  return String(value)
}
