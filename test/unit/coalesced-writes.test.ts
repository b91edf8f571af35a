/**
 * coalescedWrites joins the pieces of each send (noise's length prefix,
 * ciphertext and tag) before they reach the socket, on dialed and
 * accepted connections alike, and leaves everything else as it was.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Uint8ArrayList } from 'uint8arraylist'
import type { MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { coalescedWrites } from '../../src/net/coalesced-writes.js'

/** A connection that records what reaches its socket, piece by piece. */
class RecordsWrites {
  writes: number[][] = []
  bytes: Uint8Array[] = []
  sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } {
    this.writes.push([...data].map(piece => piece.byteLength))
    this.bytes.push(data.subarray())
    return { sentBytes: data.byteLength, canSendMore: true }
  }
}

/** A transport that hands a RecordsWrites to the upgrader it is given. */
function transportWith (conn: RecordsWrites): Transport {
  const upgrade = async (upgrader: Upgrader, inbound: boolean) => {
    const maConn = conn as unknown as MultiaddrConnection
    return inbound ? await upgrader.upgradeInbound(maConn, {} as any) : await upgrader.upgradeOutbound(maConn, {} as any)
  }
  return {
    label: 'records writes',
    dial: async (_ma: unknown, options: { upgrader: Upgrader }) => await upgrade(options.upgrader, false),
    createListener: (options: { upgrader: Upgrader }) => ({ accept: async () => await upgrade(options.upgrader, true) })
  } as unknown as Transport
}

const passThrough = { upgradeInbound: async () => 'in', upgradeOutbound: async () => 'out', other: () => 'kept' } as unknown as Upgrader

function pieces (...sizes: number[]): Uint8ArrayList {
  return new Uint8ArrayList(...sizes.map(size => new Uint8Array(size).fill(size % 251)))
}

describe('coalescedWrites', () => {
  it('a dialed connection writes a noise message (length, ciphertext, tag) in one piece, bytes unchanged', async () => {
    const conn = new RecordsWrites()
    const transport = coalescedWrites(() => transportWith(conn))({})
    assert.equal(await transport.dial(multiaddr('/ip4/127.0.0.1/tcp/1'), { upgrader: passThrough } as any), 'out')
    const message = pieces(2, 1200, 16)
    const sent = conn.sendData(message)
    assert.deepEqual(conn.writes, [[1218]])
    assert.deepEqual(conn.bytes[0], message.subarray())
    assert.equal(sent.sentBytes, 1218)
  })

  it('an accepted connection does too', async () => {
    const conn = new RecordsWrites()
    const transport = coalescedWrites(() => transportWith(conn))({})
    const listener = transport.createListener({ upgrader: passThrough } as any) as unknown as { accept: () => Promise<string> }
    assert.equal(await listener.accept(), 'in')
    conn.sendData(pieces(2, 28))
    assert.deepEqual(conn.writes, [[30]])
  })

  it('leaves a single piece, and a send too big to copy cheaply, as they are', async () => {
    const conn = new RecordsWrites()
    const transport = coalescedWrites(() => transportWith(conn))({})
    await transport.dial(multiaddr('/ip4/127.0.0.1/tcp/1'), { upgrader: passThrough } as any)
    conn.sendData(pieces(500))
    conn.sendData(pieces(2, 300_000, 16))
    assert.deepEqual(conn.writes, [[500], [2, 300_000, 16]])
  })

  it('keeps the rest of the transport and of the upgrader', async () => {
    let seen: Upgrader | undefined
    const inner = { label: 'tcp', dialFilter: (addrs: unknown[]) => addrs, dial: async (_ma: unknown, o: { upgrader: Upgrader }) => { seen = o.upgrader } }
    const transport = coalescedWrites(() => inner as unknown as Transport)({}) as any
    assert.equal(transport.label, 'tcp')
    assert.deepEqual(transport.dialFilter([1, 2]), [1, 2])
    await transport.dial(multiaddr('/ip4/127.0.0.1/tcp/1'), { upgrader: passThrough })
    assert.equal((seen as any).other(), 'kept')
  })
})
