/**
 * Config files and BLENDNET_* variables under the command line: which
 * layer wins, how values are read, and that every mistake is one
 * sentence naming the file and the key (or the variable). Runs against
 * the real options tables and help texts of worker and submit.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parse, positiveInt, type Options } from '../../src/cli/args.js'
import { namingConfigSources, nameSources } from '../../src/cli/config.js'
import { pathFlags, type ConfigurableCommand } from '../../src/cli/config-registry.js'
import { OPTIONS as RELAY_OPTIONS, RELAY_HELP } from '../../src/cli/relay-command.js'
import { OPTIONS as STATUS_OPTIONS, STATUS_HELP } from '../../src/cli/status-command.js'
import { OPTIONS as SUBMIT_OPTIONS, SUBMIT_HELP } from '../../src/cli/submit-command.js'
import { OPTIONS as WORKER_OPTIONS, WORKER_HELP } from '../../src/cli/worker-command.js'
import { parseDuration } from '../../src/common/duration.js'
import { UsageError } from '../../src/common/errors.js'
import { packagePath } from '../../src/common/paths.js'

const COMMANDS = new Map<string, ConfigurableCommand>([
  ['worker', { options: WORKER_OPTIONS, paths: pathFlags(WORKER_HELP) }],
  ['submit', { options: SUBMIT_OPTIONS, paths: pathFlags(SUBMIT_HELP) }]
])

let root: string
let project: string
let configDir: string

/** A run in `project` with only the variables given: no user config leaks in. */
function run (command: 'worker' | 'submit', args: string[] = [], env: Record<string, string> = {}) {
  const options = command === 'worker' ? WORKER_OPTIONS : SUBMIT_OPTIONS
  return parse(command, args, options, {
    cwd: project, env: { BLENDNET_CONFIG_DIR: configDir, ...env }, commands: COMMANDS
  }).values
}

async function local (toml: string): Promise<string> {
  const path = join(project, 'blendnet.toml')
  await writeFile(path, toml)
  return path
}

/** The UsageError a run throws: its message must name `parts`, in one sentence. */
function refuses (runIt: () => unknown, ...parts: Array<string | RegExp>): void {
  assert.throws(runIt, (err: Error) => {
    assert.ok(err instanceof UsageError, `not a UsageError: ${err.stack}`)
    assert.doesNotMatch(err.message, /\n/)
    for (const part of parts) {
      if (typeof part === 'string') assert.ok(err.message.includes(part), `"${part}" not in: ${err.message}`)
      else assert.match(err.message, part)
    }
    return true
  })
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'blendnet-config-test-'))
  project = join(root, 'project')
  configDir = join(root, 'user-config')
  await mkdir(project)
  await mkdir(configDir)
})

after(async () => { await rm(root, { recursive: true, force: true }) })

describe('config precedence', () => {
  it('flag over BLENDNET_WORKER_X over BLENDNET_X over [worker] over top-level over nothing', async () => {
    await local('hang-timeout = "1m"\n[worker]\nhang-timeout = "2m"\n')
    assert.equal(run('worker')['hang-timeout'], '2m')
    await local('hang-timeout = "1m"\n')
    assert.equal(run('worker')['hang-timeout'], '1m')
    assert.equal(run('worker', [], { BLENDNET_HANG_TIMEOUT: '3m' })['hang-timeout'], '3m')
    assert.equal(run('worker', [], { BLENDNET_HANG_TIMEOUT: '3m', BLENDNET_WORKER_HANG_TIMEOUT: '4m' })['hang-timeout'], '4m')
    assert.equal(run('worker', ['--hang-timeout', '5m'], { BLENDNET_WORKER_HANG_TIMEOUT: '4m' })['hang-timeout'], '5m')
    await local('')
    assert.equal(run('worker')['hang-timeout'], undefined)
  })

  it('replace a whole list: the command line\'s --bootstrap, not the file\'s plus it', async () => {
    await local('bootstrap = ["/ip4/10.0.0.1/tcp/1/p2p/A", "/ip4/10.0.0.2/tcp/1/p2p/B"]\n')
    assert.deepEqual(run('worker').bootstrap, ['/ip4/10.0.0.1/tcp/1/p2p/A', '/ip4/10.0.0.2/tcp/1/p2p/B'])
    assert.deepEqual(run('worker', ['--bootstrap', '/ip4/10.0.0.3/tcp/1/p2p/C']).bootstrap, ['/ip4/10.0.0.3/tcp/1/p2p/C'])
    assert.deepEqual(run('worker', [], { BLENDNET_BOOTSTRAP: '/ip4/10.0.0.4/tcp/1/p2p/D, /ip4/10.0.0.5/tcp/1/p2p/E' }).bootstrap,
      ['/ip4/10.0.0.4/tcp/1/p2p/D', '/ip4/10.0.0.5/tcp/1/p2p/E'])
  })

  it('let --no-X and --X turn off a switch the file or environment turned on; the last one given wins', async () => {
    await local('[worker]\nonce = true\nno-mdns = true\n')
    assert.equal(run('worker').once, true)
    assert.equal(run('worker', ['--no-once']).once, false)
    assert.equal(run('worker', ['--no-once', '--once']).once, true)
    assert.equal(run('worker', ['--mdns'])['no-mdns'], false)
    assert.equal(run('worker', ['--no-mdns'])['no-mdns'], true)
    assert.equal(run('worker', [], { BLENDNET_WORKER_ONCE: 'false' }).once, false)
    refuses(() => run('worker', ['--no-listen']), 'unknown option --no-listen')
  })

  it('take ./blendnet.toml, else config.toml in the config dir; --config or BLENDNET_CONFIG names another', async () => {
    await rm(join(project, 'blendnet.toml'), { force: true })
    assert.equal(run('worker').sandbox, undefined, 'no file at all is no error')
    await writeFile(join(configDir, 'config.toml'), 'sandbox = "none"\n')
    assert.equal(run('worker').sandbox, 'none')
    await local('sandbox = "auto"\n')
    assert.equal(run('worker').sandbox, 'auto', './blendnet.toml comes before the config dir\'s')
    const other = join(root, 'other.toml')
    await writeFile(other, 'sandbox = "bwrap"\n')
    assert.equal(run('worker', [], { BLENDNET_CONFIG: other }).sandbox, 'bwrap')
    assert.equal(run('worker', ['--config', '../other.toml']).sandbox, 'bwrap', '--config is relative to the working folder')
    assert.equal(run('worker', ['--config', '/dev/null']).sandbox, undefined, 'an empty file sets nothing')
    refuses(() => run('worker', ['--config', 'missing.toml']), `--config ${join(project, 'missing.toml')} does not exist`)
    refuses(() => run('worker', [], { BLENDNET_CONFIG: join(root, 'gone.toml') }), 'BLENDNET_CONFIG', 'gone.toml does not exist')
    await rm(join(configDir, 'config.toml'))
  })

  it('apply an options table\'s defaults below every layer', async () => {
    await local('[worker]\nsandbox = "none"\n')
    const options: Options = { ...WORKER_OPTIONS, sandbox: { type: 'string', default: 'auto' }, once: { type: 'boolean', default: false } }
    const commands = new Map<string, ConfigurableCommand>([...COMMANDS, ['worker', { options, paths: new Map() }]])
    const values = parse('worker', [], options, { cwd: project, env: {}, commands }).values
    assert.equal(values.sandbox, 'none')
    assert.equal(values.once, false)
  })

  it('leave commands that do not allow config as they were, and skip the file for --help', async () => {
    await local('[worker]\nlisen = 1\n')
    const demo = parse('demo', ['--dir', 'x'], { dir: { type: 'string' } }, { cwd: project, env: {}, commands: COMMANDS })
    assert.deepEqual({ ...demo.values }, { dir: 'x' })
    assert.equal(run('worker', ['--help']).help, true)
  })
})

describe('config values', () => {
  it('accept numbers where a flag takes one, as the command line would spell them', async () => {
    await local('[submit]\nchunk-size = 8\nsamples = 128\nresolution = 50\n')
    const values = run('submit', ['scene.blend'])
    assert.deepEqual([values['chunk-size'], values.samples, values.resolution], ['8', '128', '50'])
  })

  it('read paths next to the file, ~ as the home folder, and a bare program name as one on PATH', async () => {
    await mkdir(join(project, 'sub'), { recursive: true })
    await writeFile(join(project, 'sub', 'shared.toml'), [
      'key = "keys/submit.key"',
      'swarm-key = "~/team.key"',
      'blender = "blender-4.2"',
      '[worker]',
      'work-dir = "../cache"',
      'blender = "tools/blender"',
      '[submit]',
      'output = "renders"',
      'frames = "1-10"'
    ].join('\n'))
    const submit = run('submit', ['--config', 'sub/shared.toml', 'x.blend'])
    assert.equal(submit.output, join(project, 'sub', 'renders'))
    assert.equal(submit.key, join(project, 'sub', 'keys', 'submit.key'))
    assert.equal(submit['swarm-key'], join(homedir(), 'team.key'))
    assert.equal(submit.blender, 'blender-4.2')
    assert.equal(submit.frames, '1-10', 'not a path')
    const worker = run('worker', ['--config', 'sub/shared.toml'])
    assert.equal(worker['work-dir'], join(project, 'cache'))
    assert.equal(worker.blender, join(project, 'sub', 'tools', 'blender'))
    assert.equal(run('worker', ['--config', 'sub/shared.toml'], { BLENDNET_WORKER_WORK_DIR: 'mine' })['work-dir'], 'mine',
      'a variable is read like a flag, from the working folder')
  })

  it('read switches and lists from the environment', async () => {
    await local('')
    assert.equal(run('worker', [], { BLENDNET_WORKER_ALLOW_SCRIPTS: 'yes' })['allow-scripts'], true)
    assert.equal(run('worker', [], { BLENDNET_WORKER_ALLOW_SCRIPTS: '0' })['allow-scripts'], false)
    assert.equal(run('worker', [], { BLENDNET_WORKER_ALLOW_SCRIPTS: '' })['allow-scripts'], undefined, 'empty is unset')
    assert.deepEqual(run('worker', [], { BLENDNET_WORKER_LISTEN: '/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/2' }).listen,
      ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'])
    assert.equal(run('worker', [], { BLENDNET_SWARM_KEY: '/k/swarm.key' })['swarm-key'], '/k/swarm.key')
    assert.equal(run('submit', [], { BLENDNET_BLENDER: '/opt/blender/blender' }).blender, '/opt/blender/blender')
  })
})

describe('config errors name the file and the key, or the variable', () => {
  it('an unknown key in a command\'s table, or at the top, suggesting the near one', async () => {
    const file = await local('[worker]\nlisen = ["/ip4/127.0.0.1/tcp/0"]\n')
    refuses(() => run('worker'), `${file}: worker.lisen is not an option of blendnet worker (did you mean listen?)`)
    await local('boostrap = []\n')
    refuses(() => run('worker'), `${file}: boostrap is not an option of worker, submit (did you mean bootstrap?)`)
  })

  it('an unknown table, and a typo in another command\'s table', async () => {
    const file = await local('[sumbit]\noutput = "r"\n')
    refuses(() => run('worker'), `${file}: [sumbit] is not a command with options`, 'did you mean [submit]?')
    await local('[submit]\noutptu = "r"\n')
    refuses(() => run('worker'), `${file}: submit.outptu is not an option of blendnet submit`)
  })

  it('a value of the wrong type', async () => {
    const cases: Array<[string, string]> = [
      ['[worker]\nonce = "yes"\n', 'worker.once must be true or false, not "yes"'],
      ['[worker]\nsandbox = true\n', 'worker.sandbox must be a string, not true'],
      ['[worker]\nsandbox = ["none"]\n', 'worker.sandbox must be a string, not a list'],
      ['[worker]\nlisten = [1, false]\n', 'worker.listen must be a list of strings, not a list holding false'],
      ['[worker]\nlisten = { a = 1 }\n', 'worker.listen must be a string or a list of strings, not a table'],
      ['[worker]\nhang-timeout = 1979-05-27\n', 'worker.hang-timeout must be a string, not a date'],
      ['worker = 3\n', 'worker must be a table ([worker]), not 3'],
      ['[submit]\nconfig = "x.toml"\n', 'submit.config is not an option of blendnet submit'],
      ['once = 1\n', 'once must be true or false, not 1']
    ]
    for (const [toml, problem] of cases) {
      const file = await local(toml)
      refuses(() => run('worker'), `${file}: ${problem}`)
    }
  })

  it('a file that is not TOML, with the line and column', async () => {
    const file = await local('[worker]\nonce = \n')
    refuses(() => run('worker'), `${file} is not valid TOML: `, /at line 2, column \d+$/)
  })

  it('a variable that is no option of the command, or a switch that is neither true nor false', async () => {
    await local('')
    refuses(() => run('worker', [], { BLENDNET_WORKER_LISTN: 'x' }), 'BLENDNET_WORKER_LISTN is not an option of blendnet worker (did you mean BLENDNET_WORKER_LISTEN?)')
    refuses(() => run('worker', [], { BLENDNET_WORKER_ONCE: 'maybe' }), 'BLENDNET_WORKER_ONCE must be true or false (or 1 or 0), not "maybe"')
    assert.equal(run('worker', [], { BLENDNET_WORKER_WAIT: '1m' })['worker-wait'], undefined,
      'submit\'s --worker-wait variable is no typo of the worker\'s')
    assert.equal(run('submit', [], { BLENDNET_WORKER_WAIT: '1m' })['worker-wait'], '1m')
  })
})

describe('a flag\'s own check, for a value from the file or the environment', () => {
  /** Parses like the command, then checks the value as the command does. */
  async function hangTimeout (args: string[], env: Record<string, string> = {}): Promise<string> {
    return await namingConfigSources(async () => {
      const text = run('worker', args, env)['hang-timeout']
      return String(parseDuration(String(text), '--hang-timeout', { allowZero: true }))
    }).catch((err: Error) => err.message)
  }

  it('names the file and key, or the variable, in place of the flag', async () => {
    const file = await local('[worker]\nhang-timeout = "5x"\n')
    assert.equal(await hangTimeout([]), `${file}: worker.hang-timeout "5x" is not a duration; write it like 90s, 10m or 1h30m`)
    assert.equal(await hangTimeout([], { BLENDNET_WORKER_HANG_TIMEOUT: '6y' }),
      'BLENDNET_WORKER_HANG_TIMEOUT "6y" is not a duration; write it like 90s, 10m or 1h30m')
    assert.equal(await hangTimeout(['--hang-timeout', '7z']), '--hang-timeout "7z" is not a duration; write it like 90s, 10m or 1h30m')
    await local('[worker]\nhang-timeout = "10s"\n')
    assert.equal(await hangTimeout([]), '10000')
  })

  it('names the key where the message starts with the flag, before its value', async () => {
    const file = await local('[submit]\nchunk-size = 0\n')
    const message = await namingConfigSources(async () =>
      positiveInt(String(run('submit', ['x.blend'])['chunk-size']), '--chunk-size', 4)).catch((err: Error) => err.message)
    assert.equal(message, `${file}: submit.chunk-size must be a whole number of at least 1, not "0"`)
  })

  it('keeps a flag only advised, and points at a value only quoted', () => {
    const origins = {
      'allow-missing': { kind: 'file' as const, file: '/p/blendnet.toml', key: 'submit.allow-missing' },
      blender: { kind: 'env' as const, variable: 'BLENDNET_BLENDER' }
    }
    const sources = { values: { 'allow-missing': false, blender: '/opt/b/blender' }, origins }
    const advice = 'the scene needs 2 missing files; pass --allow-missing to render without them'
    assert.equal(nameSources(advice, sources), advice)
    assert.equal(nameSources('Blender at "/opt/b/blender" does not exist; point blendnet at it with --blender PATH.', sources),
      'Blender at "/opt/b/blender" does not exist; point blendnet at it with --blender PATH (from BLENDNET_BLENDER).')
  })
})

describe('path flags', () => {
  it('are read from the help texts: <dir>, <file> and <path> next to the file, a <program> on PATH', () => {
    const worker = pathFlags(WORKER_HELP)
    const submit = pathFlags(SUBMIT_HELP)
    assert.equal(worker.get('work-dir'), 'path')
    assert.equal(worker.get('key'), 'path')
    assert.equal(worker.get('swarm-key'), 'path')
    assert.equal(worker.get('blender'), 'path-or-program')
    assert.equal(submit.get('output'), 'path')
    assert.equal(submit.get('blender'), 'path-or-program')
    assert.equal(submit.get('frames'), undefined)
  })
})

describe('docs/config.md', () => {
  it('has an example that every command allowing config reads without a mistake', async () => {
    const docs = await readFile(packagePath('docs', 'config.md'), 'utf8')
    const example = /```toml\n([\s\S]*?)```/.exec(docs)?.[1]
    assert.ok(example !== undefined, 'docs/config.md has a toml example')
    await local(example)
    const all = new Map<string, ConfigurableCommand>([...COMMANDS,
      ['relay', { options: RELAY_OPTIONS, paths: pathFlags(RELAY_HELP) }],
      ['status', { options: STATUS_OPTIONS, paths: pathFlags(STATUS_HELP) }]])
    for (const [command, { options }] of all) {
      const values = parse(command, command === 'submit' ? ['shot.blend'] : [], options, { cwd: project, env: {}, commands: all }).values
      assert.equal(values['swarm-key'], join(project, 'team.key'), command)
    }
  })
})
