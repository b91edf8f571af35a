/**
 * The systemd units in deploy/: `systemd-analyze verify` accepts them
 * without a single warning (a misspelt directive is only a warning), and
 * they run blendnet as the docs say. verify insists that ExecStart's
 * program exists, so it checks a copy whose ExecStart names this
 * checkout's bin/blendnet instead of /opt/blendnet/bin/blendnet; nothing
 * else is changed. Skipped, saying so, where systemd-analyze is missing.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { execa } from 'execa'
import { RELAY_HELP } from '../../src/cli/relay-command.js'
import { WORKER_HELP } from '../../src/cli/worker-command.js'
import { packagePath } from '../../src/common/paths.js'

const INSTALLED = '/opt/blendnet/bin/blendnet'
const UNITS = [
  { file: 'blendnet-worker.service', command: 'worker', help: WORKER_HELP },
  { file: 'blendnet-relay.service', command: 'relay', help: RELAY_HELP }
]

async function systemdAnalyze (): Promise<string | undefined> {
  const found = await execa('sh', ['-c', 'command -v systemd-analyze'], { reject: false })
  return found.exitCode === 0 ? found.stdout.trim() : undefined
}

function directives (text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (match === null) continue
    out.set(match[1], [...out.get(match[1]) ?? [], match[2]])
  }
  return out
}

describe('systemd units', () => {
  for (const unit of UNITS) {
    it(`${unit.file} runs the installed blendnet ${unit.command} as its own user, restarting on failure`, async () => {
      const d = directives(await readFile(packagePath('deploy', unit.file), 'utf8'))
      assert.deepEqual(d.get('User'), ['blendnet'])
      assert.deepEqual(d.get('Restart'), ['on-failure'])
      const exec = d.get('ExecStart')?.[0] ?? ''
      assert.ok(exec.startsWith(`${INSTALLED} ${unit.command} `), exec)
      assert.doesNotMatch(exec, /--once/, 'a daemon stays between jobs')
      for (const flag of exec.match(/--[a-z-]+/g) ?? []) {
        assert.ok(unit.help.includes(`  ${flag} `) || unit.help.includes(`  ${flag}\n`), `${flag} is a flag of blendnet ${unit.command}`)
      }
    })

    it(`systemd-analyze verify accepts ${unit.file} without a warning`, async (t) => {
      const analyze = await systemdAnalyze()
      if (analyze === undefined) { t.skip('systemd-analyze is not installed here (apt install systemd)'); return }
      const binary = packagePath('bin', 'blendnet')
      assert.ok(existsSync(binary))
      const dir = await mkdtemp(join(tmpdir(), 'blendnet-units-'))
      try {
        const text = await readFile(packagePath('deploy', unit.file), 'utf8')
        const copy = join(dir, unit.file)
        await writeFile(copy, text.replaceAll(INSTALLED, binary))
        const result = await execa(analyze, ['verify', copy], { reject: false, all: true })
        assert.equal(result.exitCode, 0, result.all)
        assert.equal(result.all, '', 'no warning either')
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })
  }
})
