import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { LocalWriteError, receiveFile } from '../../src/net/streams.js'

/** Just enough of a libp2p stream for receiveFile: message events. */
class BytesArriving extends EventTarget {
  pause (): void {}
  resume (): void {}
  deliver (bytes: Uint8Array): void {
    this.dispatchEvent(Object.assign(new Event('message'), { data: bytes }))
  }
}

describe('receiveFile', () => {
  it('fails with LocalWriteError when the disk refuses the bytes, even after all arrived', { skip: existsSync('/dev/full') ? false : 'no /dev/full here' }, async () => {
    const stream = new BytesArriving()
    // /dev/full refuses every write with ENOSPC, as a full disk does.
    const received = receiveFile(stream as unknown as Stream, '/dev/full', 100_000)
    stream.deliver(new Uint8Array(100_000))
    await assert.rejects(received, (err: Error) => err instanceof LocalWriteError && /ENOSPC/.test(err.message))
  })
})
