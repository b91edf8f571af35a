/**
 * One write to the socket per send. Noise hands TCP each message as its
 * 2-byte length, its ciphertext and (from Node's cipher) its tag: three
 * pieces, which libp2p's TCP connection writes one by one. With Nagle off
 * each piece is a syscall and a packet of its own, and the peer wakes up
 * for each; most messages are a few dozen bytes (yamux window updates,
 * acknowledgements, stream openings). Joined, a light job's sends take
 * half the socket writes and packets (and a relay forwards half as many);
 * the CPU saved on loopback is small (docs/performance.md).
 */
import { Uint8ArrayList } from 'uint8arraylist'
import type { MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'

/** Above this, a send is written as it comes: copying it would cost more
 * than the syscalls it saves. */
const MAX_JOINED_BYTES = 256 * 1024

type SendData = (data: Uint8ArrayList) => { sentBytes: number, canSendMore: boolean }

/** Wraps a transport factory (`tcp()`) so that every connection it makes
 * or accepts joins the pieces of each send. */
export function coalescedWrites<C> (factory: (components: C) => Transport): (components: C) => Transport {
  return (components) => {
    const transport = factory(components)
    return new Proxy(transport, {
      get (target, prop) {
        if (prop === 'dial') {
          return async (ma: Parameters<Transport['dial']>[0], options: Parameters<Transport['dial']>[1]) =>
            await target.dial(ma, { ...options, upgrader: joining(options.upgrader) })
        }
        if (prop === 'createListener') {
          return (options: Parameters<Transport['createListener']>[0]) =>
            target.createListener({ ...options, upgrader: joining(options.upgrader) })
        }
        const value = Reflect.get(target, prop, target)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
  }
}

function joining (upgrader: Upgrader): Upgrader {
  return new Proxy(upgrader, {
    get (target, prop) {
      if (prop === 'upgradeInbound' || prop === 'upgradeOutbound') {
        return async (maConn: MultiaddrConnection, options: any) => {
          joinSends(maConn)
          return await target[prop](maConn, options)
        }
      }
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/** `sendData` is how libp2p's message streams hand bytes to the socket. */
function joinSends (maConn: MultiaddrConnection): void {
  const conn = maConn as unknown as { sendData?: SendData }
  const sendData = conn.sendData?.bind(maConn)
  if (sendData === undefined) return
  conn.sendData = (data) => {
    if (data.byteLength > MAX_JOINED_BYTES || !inPieces(data)) return sendData(data)
    return sendData(new Uint8ArrayList(data.subarray()))
  }
}

function inPieces (data: Uint8ArrayList): boolean {
  let pieces = 0
  for (const _ of data) if (++pieces > 1) return true
  return false
}
