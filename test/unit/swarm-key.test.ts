/**
 * Swarm key files: the libp2p format read strictly, written 0600 and
 * never over an existing file, and found in a fixed order.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { UsageError } from '../../src/common/errors.js'
import {
  formatSwarmKey, parseSwarmKey, readSwarmKey, resolveSwarmKey, swarmKeyFingerprint, writeNewSwarmKey
} from '../../src/net/swarm-key.js'
import { tempDir } from '../helpers/swarm.js'

const HEX = '2e307071e9c5314a3d3e261e0850fc6ed55391c51c37253a2b827d9899850b03'
const GOOD = `/key/swarm/psk/1.0.0/\n/base16/\n${HEX}\n`

function usageError (pattern: RegExp) {
  return (err: Error): boolean => err instanceof UsageError && pattern.test(err.message)
}

describe('swarm key format', () => {
  it('reads the libp2p format, with or without a final newline, CRLF and upper-case hex', () => {
    const expected = Buffer.from(HEX, 'hex')
    for (const text of [GOOD, GOOD.trimEnd(), GOOD.replace(/\n/g, '\r\n'), GOOD.replace(HEX, HEX.toUpperCase())]) {
      assert.deepEqual(Buffer.from(parseSwarmKey(text)), expected)
    }
  })

  it('writes what it reads', () => {
    const psk = Uint8Array.from(randomBytes(32))
    assert.equal(formatSwarmKey(Buffer.from(HEX, 'hex')), GOOD)
    assert.deepEqual(parseSwarmKey(formatSwarmKey(psk)), psk)
  })

  it('says which line is wrong', () => {
    assert.throws(() => parseSwarmKey(''), /first line/)
    assert.throws(() => parseSwarmKey(GOOD.replace('1.0.0', '2.0.0')), /first line/)
    assert.throws(() => parseSwarmKey(GOOD.replace('/base16/', '/base64/')), /second line .*not supported/)
    assert.throws(() => parseSwarmKey(GOOD.replace(HEX, HEX.slice(2))), /third line is not 64 hex digits/)
    assert.throws(() => parseSwarmKey(GOOD.replace(HEX, HEX.slice(1) + 'g')), /third line/)
    assert.throws(() => parseSwarmKey(`${GOOD}extra\n`), /more than three lines/)
  })

  it('fingerprints a key without showing it', () => {
    const psk = Buffer.from(HEX, 'hex')
    const fingerprint = swarmKeyFingerprint(psk)
    assert.match(fingerprint, /^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/)
    assert.equal(swarmKeyFingerprint(Buffer.from(HEX, 'hex')), fingerprint)
    assert.notEqual(swarmKeyFingerprint(randomBytes(32)), fingerprint)
    assert.ok(!HEX.includes(fingerprint.replace(/:/g, '')))
  })
})

describe('swarm key files', () => {
  let dir: string
  before(async () => { dir = await tempDir('blendnet-swarm-key-') })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  async function keyFile (name: string, text = GOOD, mode = 0o600): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, text, { mode })
    await chmod(path, mode)
    return path
  }

  it('reads a well-formed private file', async () => {
    const path = await keyFile('good.key')
    const key = await readSwarmKey(path, '--swarm-key')
    assert.deepEqual(Buffer.from(key.psk), Buffer.from(HEX, 'hex'))
    assert.equal(key.path, path)
    assert.equal(key.fingerprint, swarmKeyFingerprint(key.psk))
  })

  it('refuses, in one sentence naming the fix, a missing, malformed, shared or non-file key', async () => {
    await assert.rejects(readSwarmKey(join(dir, 'missing.key'), '--swarm-key'),
      usageError(/^--swarm-key \S+missing\.key does not exist; make one with blendnet keygen/))
    await assert.rejects(readSwarmKey(await keyFile('bad.key', 'hello\n'), '--swarm-key'),
      usageError(/bad\.key is not a libp2p swarm key: its first line/))
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      await assert.rejects(readSwarmKey(await keyFile(`shared-${mode.toString(8)}.key`, GOOD, mode), 'BLENDNET_SWARM_KEY'),
        usageError(new RegExp(`is open to other users \\(mode 0${mode.toString(8)}\\); make it private with chmod 600 `)))
    }
    await mkdir(join(dir, 'folder.key'))
    await assert.rejects(readSwarmKey(join(dir, 'folder.key'), '--swarm-key'), usageError(/is not a file/))
  })

  it('are found in order: --swarm-key, then $BLENDNET_SWARM_KEY, then swarm.key in the config dir', async () => {
    const config = join(dir, 'config')
    await mkdir(config)
    const env = { BLENDNET_CONFIG_DIR: config }
    assert.equal(await resolveSwarmKey(undefined, env), undefined, 'no key anywhere: an open swarm')

    const inConfig = await keyFile(join('config', 'swarm.key'), formatSwarmKey(randomBytes(32)))
    const fromEnv = await keyFile('env.key', formatSwarmKey(randomBytes(32)))
    const fromFlag = await keyFile('flag.key', formatSwarmKey(randomBytes(32)))
    assert.equal((await resolveSwarmKey(undefined, env))?.path, inConfig)
    assert.equal((await resolveSwarmKey(undefined, { ...env, BLENDNET_SWARM_KEY: fromEnv }))?.path, fromEnv)
    assert.equal((await resolveSwarmKey(fromFlag, { ...env, BLENDNET_SWARM_KEY: fromEnv }))?.path, fromFlag)
    await assert.rejects(resolveSwarmKey(undefined, { ...env, BLENDNET_SWARM_KEY: join(dir, 'gone.key') }),
      usageError(/^BLENDNET_SWARM_KEY \S+gone\.key does not exist/))

    // A config-dir key that is there but broken never falls back to open.
    await chmod(inConfig, 0o644)
    await assert.rejects(resolveSwarmKey(undefined, env), usageError(/open to other users/))
    await rm(inConfig)
    await symlink(join(dir, 'nowhere.key'), inConfig)
    await assert.rejects(resolveSwarmKey(undefined, env), usageError(/does not exist/))
  })

  it('keygen writes a new key 0600 and never replaces a file', async () => {
    const path = join(dir, 'new.key')
    const key = await writeNewSwarmKey(path)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    assert.deepEqual((await readSwarmKey(path, '--swarm-key')).psk, key.psk)

    const before = await readFile(path, 'utf8')
    await assert.rejects(writeNewSwarmKey(path), usageError(/already exists; keygen never replaces a key/))
    assert.equal(await readFile(path, 'utf8'), before)
    await assert.rejects(writeNewSwarmKey(join(dir, 'no', 'such', 'folder', 'k')), usageError(/its folder does not exist/))
    assert.notDeepEqual((await writeNewSwarmKey(join(dir, 'other.key'))).psk, key.psk)
  })
})
