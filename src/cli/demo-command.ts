/**
 * `blendnet demo`: the README's first command. Generates a small animated
 * scene with Blender, starts N workers and one submit on 127.0.0.1 as
 * separate processes, exactly as a user would run them, and prints where
 * the frames are.
 */
import { mkdir, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { execa } from 'execa'
import { findBlender } from '../blender/install.js'
import { fileProblem, UsageError } from '../common/errors.js'
import { makeDemoScene } from '../demo/demo-scene.js'
import { parse, positiveInt, stringFlag, type Options } from './args.js'
import { say } from './console.js'

export const DEMO_HELP = `usage: blendnet demo [--workers N] [--dir <dir>]

Generates a 24-frame animated scene, starts N local workers (default 3)
and a submit on 127.0.0.1, and renders it. Everything goes into --dir
(default ./blendnet-demo); the frames land in <dir>/renders.
`

const OPTIONS: Options = {
  workers: { type: 'string', short: 'n' },
  dir: { type: 'string' },
  blender: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
}

const MAIN = process.argv[1]
const LOOPBACK = '/ip4/127.0.0.1/tcp/0'

function blendnet (args: string[]) {
  return execa(process.execPath, [MAIN, ...args], { all: true, buffer: false, reject: false })
}

type Proc = ReturnType<typeof blendnet>

/** Starts a worker and resolves with the address it prints. */
async function startWorker (dir: string, bootstrap: string[]): Promise<{ proc: Proc, addr: string }> {
  const proc = blendnet(['worker', '--listen', LOOPBACK, '--work-dir', dir, ...bootstrap.flatMap(b => ['--bootstrap', b])])
  const addr = await new Promise<string>((resolve, reject) => {
    let seen = ''
    proc.all?.on('data', (data: Buffer) => {
      seen += data.toString()
      const match = /(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+)/.exec(seen)
      if (match !== null) resolve(match[1])
    })
    void proc.then(() => { reject(new Error(`a demo worker exited early:\n${seen}`)) })
  })
  return { proc, addr }
}

export async function demoCommand (args: string[]): Promise<number> {
  const parsed = parse('demo', args, OPTIONS)
  if (parsed.values.help === true) { say(DEMO_HELP); return 0 }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`demo takes no file arguments (got "${parsed.positionals[0]}"); choose its folder with --dir`)
  }
  const count = positiveInt(stringFlag(parsed, 'workers'), '--workers', 3)
  if (count > 16) throw new UsageError(`--workers ${count} is more than a demo on one machine needs; use 16 or fewer`)
  const dir = resolve(stringFlag(parsed, 'dir') ?? 'blendnet-demo')
  const blender = await findBlender(stringFlag(parsed, 'blender'))

  await mkdir(dir, { recursive: true }).catch((err: Error) => {
    throw new UsageError(`cannot use --dir ${dir}: ${fileProblem(err)}`)
  })
  const scene = join(dir, 'scene.blend')
  say(`generating an animated scene with Blender ${blender.version}: ${scene}`)
  await makeDemoScene(blender, scene, { frames: 24, width: 320, height: 180, samples: 16 })

  const workers = []
  try {
    const first = await startWorker(join(dir, 'worker-1'), [])
    workers.push(first)
    for (let i = 2; i <= count; i++) {
      workers.push(await startWorker(join(dir, `worker-${i}`), [first.addr]))
    }
    say(`started ${count} workers; the first listens on ${first.addr}`)
    const output = join(dir, 'renders')
    await rm(output, { recursive: true, force: true })
    const submitArgs = ['submit', scene, '--frames', '1-24', '--output', output, '--bootstrap', first.addr]
    say(`running: blendnet ${submitArgs.join(' ')}`)
    const submit = execa(process.execPath, [MAIN, ...submitArgs], { stdout: 'inherit', stderr: 'ignore', reject: false })
    const result = await submit
    if (result.exitCode !== 0) return result.exitCode ?? 1
    say(`\nthe frames are in ${output}`)
    return 0
  } finally {
    for (const { proc } of workers) proc.kill('SIGTERM')
    await Promise.all(workers.map(w => w.proc))
  }
}
