import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  compareVersions, parseBlenderVersion
} from '../../src/blender/install.js'

describe('parseBlenderVersion', () => {
  it('reads the version from the first line of --version', () => {
    const output = 'Blender 3.4.1\n\tbuild date: 2023-03-21\n'
    assert.deepEqual(parseBlenderVersion(output),
      { version: '3.4.1', major: 3, minor: 4, patch: 1 })
  })

  it('reads versions without a patch and with a suffix', () => {
    assert.equal(parseBlenderVersion('Blender 2.79 (sub 7)')?.version,
      '2.79.0')
    assert.equal(parseBlenderVersion('Blender 4.2.3 LTS')?.version, '4.2.3')
  })

  it('gives nothing for other programs', () => {
    assert.equal(parseBlenderVersion('Python 3.11.7'), undefined)
    assert.equal(parseBlenderVersion(''), undefined)
  })
})

describe('compareVersions', () => {
  it('orders major.minor numerically, not as text', () => {
    assert.ok(compareVersions('3.4', '3.10') < 0)
    assert.ok(compareVersions('5.0', '3.4') > 0)
    assert.ok(compareVersions('2.93', '3.0') < 0)
  })

  it('treats missing parts as 0', () => {
    assert.equal(compareVersions('3.4', '3.4.0'), 0)
    assert.ok(compareVersions('3.4.1', '3.4') > 0)
  })

  it('refuses strings that are not versions', () => {
    assert.throws(() => compareVersions('3.x', '3.4'), RangeError)
  })
})
