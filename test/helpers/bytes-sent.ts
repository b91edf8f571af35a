/**
 * Counts the bytes a node sends on the streams of some protocols, from
 * outside the code under test: it wraps `node.handle`, so it must be
 * called before the handlers are registered (before a coordinator runs).
 */
import type { StreamHandler } from '@libp2p/interface'
import type { SwarmNode } from '../../src/net/node.js'

export interface SentBytes { total: number }

export function countBytesSent (node: SwarmNode, protocols: string[]): SentBytes {
  const sent: SentBytes = { total: 0 }
  const handle = node.handle.bind(node)
  node.handle = async (protocol, handler, options) => {
    const counted: StreamHandler = (stream, connection) => {
      const send = stream.send.bind(stream)
      stream.send = (data) => {
        sent.total += data.byteLength
        return send(data)
      }
      return handler(stream, connection)
    }
    const names = Array.isArray(protocol) ? protocol : [protocol]
    await handle(protocol, names.some(p => protocols.includes(p)) ? counted : handler, options)
  }
  return sent
}
