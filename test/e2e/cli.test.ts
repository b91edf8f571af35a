/**
 * The `blendnet` command itself, before any command runs: its overview,
 * its version, and arguments no command takes, each refused in one
 * sentence before anything starts.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { packagePath } from '../../src/common/paths.js'
import { runCli } from '../helpers/cli.js'

describe('the blendnet command', () => {
  it('--help lists the commands on one screen', async () => {
    const result = await runCli(['--help'], 30_000)
    assert.equal(result.exitCode, 0)
    const out = result.stdout as string
    for (const command of ['worker', 'submit', 'relay', 'demo', 'id', 'keygen', 'status']) {
      assert.match(out, new RegExp(`^  ${command} `, 'm'))
    }
    assert.ok(out.split('\n').length < 25, `${out.split('\n').length} lines`)
  })

  it('--version prints the version of its package.json', async () => {
    const { version } = JSON.parse(await readFile(packagePath('package.json'), 'utf8')) as { version: string }
    const result = await runCli(['--version'], 30_000)
    assert.equal(result.exitCode, 0)
    assert.equal(result.stdout, `blendnet ${version}`)
  })

  const refusals: Array<[string[], RegExp]> = [
    [['render'], /^blendnet: unknown command "render"; the commands are worker, submit/],
    [['demo', 'extra'], /^blendnet: demo takes no file arguments \(got "extra"\)/],
    [['worker', '--listen', '/ip4/127.0.0.1/udp/0', '--no-mdns'], /^blendnet: --listen "\/ip4\/127\.0\.0\.1\/udp\/0" is not a TCP address/],
    [['status', '--no-mdns'], /^blendnet: status has no way to find the swarm without --bootstrap/]
  ]
  for (const [args, pattern] of refusals) {
    it(`refuses "${args.join(' ')}" in one sentence`, async () => {
      const result = await runCli(args, 30_000)
      assert.equal(result.exitCode, 2, `${result.stdout}\n${result.stderr}`)
      assert.match(result.stderr as string, pattern)
      assert.equal((result.stderr as string).trim().split('\n').length, 1)
    })
  }
})
