#!/usr/bin/env node
/**
 * The `blendnet` command line: one top-level catch that tells a user's
 * mistake (one sentence, exit 2) and a failed job (exit 1) from a bug
 * (stack trace, exit 70).
 */
import { readFileSync } from 'node:fs'
import { BlendFileError } from '../blendfile/header.js'
import { BlenderNotFoundError, BlendUnreadableError } from '../blender/errors.js'
import { BlenderUnhealthyError } from '../blender/probe.js'
import { JobFailedError, UsageError } from '../common/errors.js'
import { packagePath } from '../common/paths.js'
import { FrameSpecError } from '../job/frames.js'
import { demoCommand } from './demo-command.js'
import { idCommand } from './id-command.js'
import { keygenCommand } from './keygen-command.js'
import { OPTIONS as RELAY_OPTIONS, relayCommand, RELAY_HELP } from './relay-command.js'
import { OPTIONS as STATUS_OPTIONS, statusCommand, STATUS_HELP } from './status-command.js'
import { OPTIONS as SUBMIT_OPTIONS, submitCommand, SUBMIT_HELP } from './submit-command.js'
import { OPTIONS as WORKER_OPTIONS, workerCommand, WORKER_HELP } from './worker-command.js'
import { namingConfigSources } from './config.js'
import { allowConfig } from './config-registry.js'

const HELP = `usage: blendnet <command> [options]

commands:
  worker    join the render swarm and render jobs
  submit    render a .blend on the swarm, writing frames to --output
  relay     relay for peers behind NAT, and a bootstrap peer of the swarm
  demo      render a generated scene on a few local workers
  id        print this peer's ID and where its key is
  keygen    write a new swarm key, for a private swarm
  status    list the workers of the swarm: Blender, capabilities, idle or busy

Run blendnet <command> --help for a command's options. Those of worker,
submit, relay and status can also be set in blendnet.toml or in BLENDNET_*
variables (docs/config.md). blendnet --version prints its version.
`

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  worker: workerCommand,
  submit: submitCommand,
  relay: relayCommand,
  demo: demoCommand,
  id: idCommand,
  keygen: keygenCommand,
  status: statusCommand
}

// The commands whose flags a config file and BLENDNET_* variables can set.
allowConfig('worker', WORKER_OPTIONS, WORKER_HELP)
allowConfig('submit', SUBMIT_OPTIONS, SUBMIT_HELP)
allowConfig('relay', RELAY_OPTIONS, RELAY_HELP)
allowConfig('status', STATUS_OPTIONS, STATUS_HELP)

/** Errors that are the user's to fix: their message is the whole story. */
const USER_ERRORS = [
  UsageError, BlendFileError, FrameSpecError, BlenderNotFoundError, BlendUnreadableError,
  BlenderUnhealthyError
]

async function main (argv: string[]): Promise<number> {
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP)
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-V') {
    const { version } = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }
    process.stdout.write(`blendnet ${version}\n`)
    return 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    throw new UsageError(`unknown command "${name}"; the commands are ${Object.keys(COMMANDS).join(', ')}`)
  }
  return await namingConfigSources(async () => await command(args))
}

/**
 * A reader of our output that went away (`| head`, a closed terminal or
 * ssh session) is no error of ours. A short command ends there (`blendnet
 * id | head -1`); a job or a worker goes on without printing: its outcome
 * is still in the exit code, the output folder and the log file.
 */
const LONG_RUNNING = new Set(['worker', 'submit', 'relay'])
const READER_GONE = new Set(['EPIPE', 'EIO', 'ERR_STREAM_DESTROYED'])
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (!READER_GONE.has(err.code ?? '')) throw err
    if (!LONG_RUNNING.has(process.argv[2])) process.exit(process.exitCode ?? 0)
  })
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  if (err instanceof JobFailedError) {
    process.exitCode = JobFailedError.exitCode
  } else if (USER_ERRORS.some(type => err instanceof type)) {
    process.stderr.write(`blendnet: ${(err as Error).message}\n`)
    process.exitCode = UsageError.exitCode
  } else {
    process.stderr.write(`blendnet: unexpected error, please report it:\n${(err as Error)?.stack ?? String(err)}\n`)
    process.exitCode = 70
  }
}).finally(() => {
  // libp2p can leave sockets and timers behind; the command is over once
  // what it printed is out (writes to pipes and files are synchronous on
  // Linux; the callbacks cover the rest).
  process.stdout.write('', () => { process.stderr.write('', () => process.exit()) })
})
