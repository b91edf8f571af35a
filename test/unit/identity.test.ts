/**
 * Peer keys: where they live, created 0600 on first use, refused when
 * other users can read them, and one process at a time on the config
 * dir's key.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { UsageError } from '../../src/common/errors.js'
import { configDir, defaultKeyPath, loadOrCreatePeerKey, openIdentity } from '../../src/net/identity.js'
import { tempDir } from '../helpers/swarm.js'

function usageError (pattern: RegExp) {
  return (err: Error): boolean => err instanceof UsageError && pattern.test(err.message)
}

describe('peer keys', () => {
  let dir: string
  const savedConfigDir = process.env.BLENDNET_CONFIG_DIR
  before(async () => {
    dir = await tempDir('blendnet-identity-')
    process.env.BLENDNET_CONFIG_DIR = join(dir, 'config')
  })
  after(async () => {
    if (savedConfigDir === undefined) delete process.env.BLENDNET_CONFIG_DIR
    else process.env.BLENDNET_CONFIG_DIR = savedConfigDir
    await rm(dir, { recursive: true, force: true })
  })

  it('live in $BLENDNET_CONFIG_DIR, else $XDG_CONFIG_HOME/blendnet, else ~/.config/blendnet', () => {
    assert.equal(configDir({ BLENDNET_CONFIG_DIR: '/etc/bn', XDG_CONFIG_HOME: '/x' }), '/etc/bn')
    assert.equal(configDir({ XDG_CONFIG_HOME: '/x' }), '/x/blendnet')
    assert.equal(configDir({ BLENDNET_CONFIG_DIR: '', XDG_CONFIG_HOME: 'relative' }), join(homedir(), '.config', 'blendnet'))
    assert.equal(configDir({}), join(homedir(), '.config', 'blendnet'))
    assert.equal(defaultKeyPath({ BLENDNET_CONFIG_DIR: '/etc/bn' }), '/etc/bn/identity.key')
  })

  it('are created 0600 in a 0700 folder on first use, and the same key is read after', async () => {
    const config = process.env.BLENDNET_CONFIG_DIR
    process.env.BLENDNET_CONFIG_DIR = join(dir, 'new')
    try {
      const path = defaultKeyPath()
      const first = await loadOrCreatePeerKey(path)
      assert.equal(first.created, true)
      assert.equal((await stat(path)).mode & 0o777, 0o600)
      assert.equal((await stat(join(dir, 'new'))).mode & 0o777, 0o700)
      const again = await loadOrCreatePeerKey(path)
      assert.equal(again.created, false)
      assert.equal(peerIdFromPrivateKey(again.key).toString(), peerIdFromPrivateKey(first.key).toString())
    } finally {
      process.env.BLENDNET_CONFIG_DIR = config
    }
  })

  it('are not created in a folder that does not exist, outside the config dir', async () => {
    const path = join(dir, 'typo', 'peer.key')
    await assert.rejects(loadOrCreatePeerKey(path),
      usageError(/^cannot create the peer key \S+peer\.key: the folder \S+typo does not exist$/))
    await assert.rejects(stat(join(dir, 'typo')), /ENOENT/)
  })

  it('are refused when other users can read them, or when they are not keys', async () => {
    const path = join(dir, 'shared.key')
    await loadOrCreatePeerKey(path)
    await chmod(path, 0o640)
    await assert.rejects(loadOrCreatePeerKey(path),
      usageError(/^the peer key \S+shared\.key is open to other users \(mode 0640\); make it private with chmod 600 \S+shared\.key$/))
    const junk = join(dir, 'junk.key')
    await writeFile(junk, 'not a key', { mode: 0o600 })
    await assert.rejects(loadOrCreatePeerKey(junk), usageError(/is not a libp2p private key/))
    assert.equal(await readFile(junk, 'utf8'), 'not a key', 'a bad key is never overwritten')
  })

  it('--key names the key; without it the config dir key is used and locked', async () => {
    const explicit = await openIdentity('worker', join(dir, 'explicit.key'))
    assert.equal(explicit.path, join(dir, 'explicit.key'))
    const own = await openIdentity('submit')
    assert.equal(own.path, defaultKeyPath())
    assert.equal(await readFile(`${defaultKeyPath()}.lock`, 'utf8'), String(process.pid))
  })

  it('the config dir key is refused to a second worker and replaced by a one-off key for a second submit', async () => {
    const lock = `${defaultKeyPath()}.lock`
    const owner = peerIdFromPrivateKey((await loadOrCreatePeerKey(defaultKeyPath())).key).toString()
    await writeFile(lock, String(process.ppid)) // a live process that is not us
    await assert.rejects(openIdentity('worker'),
      usageError(new RegExp(`in use by blendnet process ${process.ppid}, .*--key FILE or --work-dir DIR`)))
    const submit = await openIdentity('submit')
    assert.equal(submit.path, undefined)
    assert.match(submit.note ?? '', /in use by blendnet process \d+; this submit runs under a one-off peer ID/)
    assert.notEqual(peerIdFromPrivateKey(submit.key).toString(), owner)

    // The lock of a process that died is taken over.
    const dead = spawnSync('true').pid
    await writeFile(lock, String(dead))
    const worker = await openIdentity('worker')
    assert.equal(peerIdFromPrivateKey(worker.key).toString(), owner)
    assert.equal(await readFile(lock, 'utf8'), String(process.pid))
  })
})
