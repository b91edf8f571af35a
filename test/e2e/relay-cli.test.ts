/**
 * `blendnet relay` as an operator runs it: it prints its peer ID and the
 * addresses to give peers, keeps its peer ID across restarts, opens its
 * --log-file, and refuses mistakes with one sentence and exit 2.
 */
import assert from 'node:assert/strict'
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { CLI, runCli, TEST_ENV } from '../helpers/cli.js'
import { tempDir } from '../helpers/swarm.js'

/** Starts the relay, waits for its addresses, stops it with SIGTERM. */
async function runRelayOnce (args: string[]): Promise<{ code: number | undefined, out: string }> {
  const proc = execa(process.execPath, [CLI, 'relay', ...args], { all: true, buffer: false, reject: false, env: TEST_ENV })
  let out = ''
  proc.all?.on('data', (data: Buffer) => { out += data.toString() })
  const deadline = Date.now() + 30_000
  while (!/^ {4}\/\S+\/p2p\/\w+$/m.test(out)) {
    if (Date.now() > deadline || proc.exitCode !== null) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  proc.kill('SIGTERM')
  const result = await proc
  return { code: result.exitCode, out }
}

describe('blendnet relay', { timeout: 120_000 }, () => {
  let dir: string
  before(async () => { dir = await tempDir('blendnet-relay-cli-') })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('prints its peer ID and addresses, keeps the ID across restarts and opens --log-file', async () => {
    const key = join(dir, 'relay.key')
    const logFile = join(dir, 'relay.log')
    const args = ['--listen', '/ip4/127.0.0.1/tcp/0', '--key', key, '--log-file', logFile]
    const first = await runRelayOnce(args)
    assert.equal(first.code, 0, first.out)
    const id = /^blendnet relay (12D3KooW\w+)$/m.exec(first.out)?.[1]
    assert.ok(id !== undefined, first.out)
    assert.match(first.out, new RegExp(`^ {4}/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${id}$`, 'm'))
    assert.match(first.out, /created now, mode 0600/)
    assert.match(first.out, /^relay stopped \(SIGTERM\)$/m)
    assert.equal((await stat(key)).mode & 0o777, 0o600)
    assert.equal((await stat(logFile)).isFile(), true)

    const second = await runRelayOnce(args)
    assert.equal(/^blendnet relay (12D3KooW\w+)$/m.exec(second.out)?.[1], id, 'the same peer ID after a restart')
    assert.doesNotMatch(second.out, /created now/)
  })

  it('gives the --announce address instead of the listening one', async () => {
    const out = (await runRelayOnce(['--listen', '/ip4/127.0.0.1/tcp/0', '--key', join(dir, 'relay.key'),
      '--announce', '/dns4/relay.example.org/tcp/4001'])).out
    assert.match(out, /^ {4}\/dns4\/relay\.example\.org\/tcp\/4001\/p2p\/12D3KooW\w+$/m)
  })

  it('refuses mistakes with one sentence and exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--listen', 'nonsense'], /^blendnet: --listen "nonsense" is not a multiaddr; write it like \/ip4\/0\.0\.0\.0\/tcp\/4001$/],
      [['--announce', '/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWRBhwfeP2Y9CDkFRBAZ1pmxUadH36TKuk9KDz6oPZw6Q9'], /^blendnet: --announce "[^"]+" must not name a peer; the relay adds its own \/p2p\/<peer id>$/],
      [['--log-file', join(dir, 'no-such-dir', 'relay.log')], /^blendnet: --log-file "[^"]+" cannot be opened for appending: no such file or folder \(ENOENT\)$/],
      [['stray'], /^blendnet: relay takes no file arguments \(got "stray"\)$/],
      [['--frobnicate'], /^blendnet: relay: unknown option --frobnicate \(see blendnet relay --help\)$/]
    ]
    for (const [args, message] of cases) {
      const result = await runCli(['relay', ...args], 30_000)
      assert.equal(result.exitCode, 2, `${args.join(' ')}: ${String(result.stderr)}`)
      assert.match(String(result.stderr), message)
    }
  })

  it('--help names every option', async () => {
    const result = await runCli(['relay', '--help'], 30_000)
    assert.equal(result.exitCode, 0)
    for (const flag of ['--listen', '--announce', '--key', '--swarm-key', '--log-file']) {
      assert.ok(String(result.stdout).includes(flag), flag)
    }
  })
})
