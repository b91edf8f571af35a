/**
 * Flags from the environment: BLENDNET_<COMMAND>_<FLAG> for one command
 * (BLENDNET_WORKER_HANG_TIMEOUT), else BLENDNET_<FLAG> for every command
 * that has the flag (BLENDNET_SWARM_KEY, BLENDNET_BLENDER). An empty
 * variable counts as unset. A repeatable flag takes a comma-separated list.
 */
import { UsageError } from '../common/errors.js'
import {
  envName, settableFlags, suggestion, type ConfigurableCommand, type FlagOption,
  type FlagValue, type FlagValues, type Origin
} from './config-registry.js'

export interface EnvLayer {
  values: FlagValues
  origins: Record<string, Origin>
}

const TRUE = /^(1|true|yes|on)$/i
const FALSE = /^(0|false|no|off)$/i

/** The variable set for `flag` of `command`, the command's own first. */
export function envVariable (flag: string, command: string,
  env: NodeJS.ProcessEnv): { variable: string, text: string } | undefined {
  for (const variable of [envName(flag, command), envName(flag)]) {
    const text = env[variable]
    if (text !== undefined && text !== '') return { variable, text }
  }
  return undefined
}

export function envLayer (command: string, own: ConfigurableCommand, env: NodeJS.ProcessEnv,
  commands: ReadonlyMap<string, ConfigurableCommand>): EnvLayer {
  checkOwnVariables(command, own, env, commands)
  const layer: EnvLayer = { values: {}, origins: {} }
  for (const flag of settableFlags(own.options)) {
    const found = envVariable(flag, command, env)
    if (found === undefined) continue
    layer.values[flag] = envValue(found.text, own.options[flag], found.variable)
    layer.origins[flag] = { kind: 'env', variable: found.variable }
  }
  return layer
}

function envValue (text: string, option: FlagOption, variable: string): FlagValue {
  if (option.type === 'boolean') {
    if (TRUE.test(text.trim())) return true
    if (FALSE.test(text.trim())) return false
    throw new UsageError(`${variable} must be true or false (or 1 or 0), not "${text}"`)
  }
  if (option.multiple !== true) return text
  return text.split(',').map(item => item.trim()).filter(item => item !== '')
}

/**
 * A BLENDNET_WORKER_* variable that names no flag is a typo, unless it is
 * another command's shared variable (BLENDNET_WORKER_WAIT is submit's
 * --worker-wait for every command).
 */
function checkOwnVariables (command: string, own: ConfigurableCommand, env: NodeJS.ProcessEnv,
  commands: ReadonlyMap<string, ConfigurableCommand>): void {
  const prefix = envName('', command)
  const known = new Set([...settableFlags(own.options), 'config'].map(flag => envName(flag, command)))
  for (const { options } of commands.values()) {
    for (const flag of Object.keys(options)) known.add(envName(flag))
  }
  for (const variable of Object.keys(env)) {
    if (!variable.startsWith(prefix) || known.has(variable) || env[variable] === '') continue
    const near = suggestion(variable, [...known].filter(name => name.startsWith(prefix)))
    throw new UsageError(`${variable} is not an option of blendnet ${command}${near}`)
  }
}
