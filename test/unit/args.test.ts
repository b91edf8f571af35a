import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { allLoopback, bootstrapAddrs, listenAddrs, parse, positiveInt } from '../../src/cli/args.js'
import { parseDuration } from '../../src/common/duration.js'
import { formatSize, parseSize } from '../../src/common/sizes.js'
import { UsageError } from '../../src/common/errors.js'
import { atLeastVersion } from '../../src/common/versions.js'

describe('command-line flags', () => {
  it('accept a negative frame range after a separate --frames', () => {
    const parsed = parse('submit', ['x.blend', '--frames', '-5--1'], { frames: { type: 'string' } })
    assert.equal(parsed.values.frames, '-5--1')
    assert.deepEqual(parsed.positionals, ['x.blend'])
  })

  it('name an unknown flag in one sentence', () => {
    assert.throws(() => parse('submit', ['--frmaes', '1'], {}), (err: Error) =>
      err instanceof UsageError && /--frmaes/.test(err.message))
  })

  it('refuse a flag of one value given twice, not a repeatable one', () => {
    const options = { frames: { type: 'string' as const }, bootstrap: { type: 'string' as const, multiple: true } }
    assert.throws(() => parse('submit', ['x.blend', '--frames', '1-3', '--frames=4-5'], options),
      (err: Error) => err instanceof UsageError && err.message === 'submit: --frames is given twice ("1-3" and "4-5"); give it once')
    const parsed = parse('submit', ['x.blend', '--bootstrap', 'a', '--bootstrap', 'b', '--frames', '1'], options)
    assert.deepEqual(parsed.values.bootstrap, ['a', 'b'])
  })

  it('refuse a bootstrap address without a peer id', () => {
    assert.throws(() => bootstrapAddrs(['/ip4/127.0.0.1/tcp/4001']), /no \/p2p\//)
    assert.throws(() => bootstrapAddrs(['not an address']), /not a multiaddr/)
  })

  it('refuse a listen address that is not TCP, naming an example that fits the flag', () => {
    assert.deepEqual(listenAddrs(['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/4001'], '--listen'), ['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/4001'])
    assert.throws(() => listenAddrs(['/ip4/127.0.0.1/udp/0'], '--listen'),
      (err: Error) => err instanceof UsageError && /--listen "\/ip4\/127\.0\.0\.1\/udp\/0" is not a TCP address.*\/ip4\/0\.0\.0\.0\/tcp\/4001$/.test(err.message))
    assert.throws(() => listenAddrs(['nonsense'], '--announce'),
      (err: Error) => err instanceof UsageError && /not a multiaddr; write it like \/ip4\/203\.0\.113\.7\/tcp\/4001/.test(err.message))
  })

  it('refuse a chunk size that is not a whole number of at least 1', () => {
    for (const bad of ['0', '-1', '2.5', 'four']) {
      assert.throws(() => positiveInt(bad, '--chunk-size', 4), UsageError)
    }
    assert.equal(positiveInt(undefined, '--chunk-size', 4), 4)
  })

  it('read durations in ms, s, m and h', () => {
    assert.equal(parseDuration('90s', '--timeout'), 90_000)
    assert.equal(parseDuration('1h30m', '--timeout'), 5_400_000)
    assert.equal(parseDuration('0', '--hang-timeout', { allowZero: true }), 0)
    assert.equal(parseDuration('0s', '--hang-timeout', { allowZero: true }), 0)
    assert.throws(() => parseDuration('0', '--timeout'), /--timeout must be longer than zero|not a duration/)
    assert.equal(parseDuration('250ms', '--timeout'), 250)
    assert.equal(parseDuration('2', '--timeout'), 2000)
    assert.throws(() => parseDuration('soon', '--timeout'), /--timeout "soon"/)
  })

  it('tell loopback-only address lists apart', () => {
    assert.equal(allLoopback(['/ip4/127.0.0.1/tcp/0']), true)
    assert.equal(allLoopback(['/ip4/0.0.0.0/tcp/0']), false)
    assert.equal(allLoopback([]), false)
  })

  it('compare Blender versions numerically', () => {
    assert.equal(atLeastVersion('3.4.1', '3.4'), true)
    assert.equal(atLeastVersion('3.4.1', '5.0'), false)
    assert.equal(atLeastVersion('3.10', '3.4'), true)
    assert.equal(atLeastVersion('garbage', '3.4'), false)
  })
})

describe('sizes', () => {
  it('reads decimal and binary units, and bare bytes', () => {
    assert.equal(parseSize('500MB', '--max-job-size'), 500_000_000)
    assert.equal(parseSize('20GiB', '--max-job-size'), 20 * 2 ** 30)
    assert.equal(parseSize('1.5 kib', '--max-job-size'), 1536)
    assert.equal(parseSize('4096', '--max-job-size'), 4096)
  })

  it('refuses what is not a size, in one sentence naming the flag', () => {
    assert.throws(() => parseSize('lots', '--max-job-size'), /--max-job-size "lots" is not a size; write it like 500MB or 20GiB/)
    assert.throws(() => parseSize('5 parsecs', '--max-job-size'), /is not a size/)
    assert.throws(() => parseSize('0GB', '--max-job-size'), /more than zero bytes/)
  })

  it('prints sizes for people', () => {
    assert.equal(formatSize(512), '512 bytes')
    assert.equal(formatSize(1536), '1.5 KiB')
    assert.equal(formatSize(256 * 1024), '256 KiB')
  })
})
