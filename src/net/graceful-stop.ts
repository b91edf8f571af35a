/**
 * A node that stops must not lose what it said last (a worker's "leaving"
 * gossip, say). libp2p's own stop closes its TCP listener at the same time
 * as its connections, and the listener destroys every socket a peer
 * dialed in on at once. A socket destroyed while the peer's last bytes
 * are still unread sends a TCP reset instead of a FIN, and Linux then
 * drops what the peer had received but not yet read: our last message.
 * So connections are closed first, gracefully (flushed, then FIN); those
 * that do not close in time are left to libp2p's stop, which aborts them.
 */
import type { Libp2p } from '@libp2p/interface'
import { logger } from '../common/log.js'

const log = logger('net')

/** Long enough for a peer on loopback or a LAN to answer a close. */
const GRACEFUL_CLOSE_MS = 1000

const stopping = new WeakSet<object>()

export function closeConnectionsBeforeStop (node: Libp2p<any>): void {
  const stop = node.stop.bind(node)
  node.stop = async () => {
    if (node.status === 'started') {
      stopping.add(node)
      await closeConnections(node)
    }
    await stop()
  }
}

/** Stopping or stopped: a connection that closes now is not a peer lost. */
export function isStopping (node: Libp2p<any>): boolean {
  return stopping.has(node) || node.status !== 'started'
}

async function closeConnections (node: Libp2p<any>): Promise<void> {
  const signal = AbortSignal.timeout(GRACEFUL_CLOSE_MS)
  await Promise.all(node.getConnections().map(async (conn) => {
    await conn.close({ signal }).catch((err: Error) => {
      log.debug('connection did not close in time; aborting it', {
        peer: conn.remotePeer.toString(), err: err.message
      })
    })
  }))
}
