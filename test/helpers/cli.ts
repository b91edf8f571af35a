/**
 * The `blendnet` command as a user runs it: separate processes, stopped
 * by their own PID when a test ends.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa, type Result } from 'execa'

export const CLI = fileURLToPath(new URL('../../blendnet.mjs', import.meta.url))

/**
 * The tests' own config dir (identity key, swarm key): never the
 * user's ~/.config/blendnet, whose swarm key would make tests private.
 * The config file is empty (/dev/null), so that no blendnet.toml in the
 * folder tests run from sets flags behind their back.
 */
export const TEST_ENV = {
  BLENDNET_LOG: 'info',
  BLENDNET_CONFIG_DIR: mkdtempSync(join(tmpdir(), 'blendnet-config-')),
  BLENDNET_CONFIG: '/dev/null'
}

export type Proc = ReturnType<typeof spawnCli>

/** What bin/blendnet gives Node for `worker` and `relay`: see there. */
export const LONG_RUNNING_NODE_FLAGS = ['--max-semi-space-size=1']

function spawnCli (args: string[], env: Record<string, string> = {}) {
  const nodeFlags = args[0] === 'worker' || args[0] === 'relay' ? LONG_RUNNING_NODE_FLAGS : []
  return execa(process.execPath, [...nodeFlags, CLI, ...args], {
    all: true, buffer: false, reject: false, env: { ...TEST_ENV, ...env },
    // A stopping worker may give its Blender KILL_GRACE_MS (5 s) to exit
    // before it cleans up: execa's own 5 s would SIGKILL it first.
    forceKillAfterDelay: 30_000
  })
}

export interface RunningWorker {
  proc: Proc
  addr: string
  output: () => string
}

/** Starts `blendnet worker` and waits for the address it prints. */
export async function startCliWorker (workDir: string, bootstrap: string[] = [],
  extra: string[] = [], env: Record<string, string> = {}): Promise<RunningWorker> {
  const proc = spawnCli(['worker', '--listen', '/ip4/127.0.0.1/tcp/0', '--work-dir', workDir,
    ...bootstrap.flatMap(b => ['--bootstrap', b]), ...extra], env)
  let seen = ''
  proc.all?.on('data', (data: Buffer) => { seen += data.toString() })
  const addr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`worker printed no address:\n${seen}`)) }, 30_000)
    proc.all?.on('data', () => {
      const match = /^\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+)$/m.exec(seen)
      if (match !== null) { clearTimeout(timer); resolve(match[1]) }
    })
    void proc.then(() => { clearTimeout(timer); reject(new Error(`worker exited:\n${seen}`)) })
  })
  return { proc, addr, output: () => seen }
}

export async function stopWorkers (workers: RunningWorker[]): Promise<void> {
  for (const { proc } of workers) proc.kill('SIGTERM')
  await Promise.all(workers.map(async w => await w.proc))
}

/** Runs a command to its end: exit code, stdout and stderr. */
export async function runCli (args: string[], timeoutMs = 300_000): Promise<Result> {
  return execa(process.execPath, [CLI, ...args], {
    reject: false, timeout: timeoutMs, env: TEST_ENV
  })
}
