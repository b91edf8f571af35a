/**
 * Keeps a long-running peer joined to its bootstrap peers: whenever one
 * is not connected (it restarted, the network went away, the machine
 * slept), it is dialled again, after 1 s, then 2, 4, ... up to a minute
 * between attempts, forever. Each attempt and each reconnect is logged
 * at info with `bootstrap=` and `attempt=`, so an operator can grep a
 * daemon's log for how long it was cut off.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import { isStopping } from './graceful-stop.js'

const log = logger('net')

export const REDIAL_FIRST_MS = 1000
export const REDIAL_MAX_MS = 60_000
/** How often connections are checked (cheap: no network). */
const CHECK_INTERVAL_MS = 1000

interface Target {
  addr: Multiaddr
  peer: string
  attempt: number
  nextAt: number
  dialling: boolean
  /** Was connected once: a later dial is a reconnect. */
  wasConnected: boolean
}

/** The delay before attempt `n` (1-based) after a failed one. */
export function redialDelay (attempt: number): number {
  return Math.min(REDIAL_MAX_MS, REDIAL_FIRST_MS * 2 ** Math.max(0, attempt - 1))
}

export function keepBootstrapPeers (node: Libp2p, addrs: Multiaddr[]): void {
  const targets: Target[] = []
  for (const addr of addrs) {
    const peer = addr.getComponents().find(c => c.name === 'p2p')?.value
    if (peer === undefined || peer === node.peerId.toString()) continue
    targets.push({ addr, peer, attempt: 0, nextAt: 0, dialling: false, wasConnected: false })
  }
  if (targets.length === 0) return

  const connected = (t: Target): boolean =>
    node.getConnections().some(c => c.remotePeer.toString() === t.peer)

  const check = (): void => {
    if (isStopping(node)) return
    const now = Date.now()
    for (const t of targets) {
      if (connected(t)) {
        t.wasConnected = true
        t.attempt = 0
        continue
      }
      if (t.dialling || now < t.nextAt) continue
      void redial(t)
    }
  }

  const redial = async (t: Target): Promise<void> => {
    t.dialling = true
    t.attempt++
    const fields = { bootstrap: t.addr.toString(), attempt: t.attempt }
    if (t.wasConnected || t.attempt > 1) log.info('dialling bootstrap peer', fields)
    try {
      await node.dial(t.addr, { signal: AbortSignal.timeout(30_000) })
      if (t.wasConnected || t.attempt > 1) log.info('reconnected to bootstrap peer', fields)
      t.wasConnected = true
      t.attempt = 0
    } catch (err) {
      const delay = redialDelay(t.attempt)
      t.nextAt = Date.now() + delay
      log.info('bootstrap peer unreachable', { ...fields, retryMs: delay, err: messageOf(err) })
    } finally {
      t.dialling = false
    }
  }

  const onDisconnect = (evt: CustomEvent<{ toString: () => string }>): void => {
    const t = targets.find(t => t.peer === evt.detail.toString())
    if (t === undefined || isStopping(node)) return
    log.info('lost bootstrap peer', { bootstrap: t.addr.toString() })
    t.wasConnected = true
    t.nextAt = Date.now() + REDIAL_FIRST_MS
    setTimeout(check, REDIAL_FIRST_MS).unref()
  }
  node.addEventListener('peer:disconnect', onDisconnect)
  const timer = setInterval(check, CHECK_INTERVAL_MS)
  timer.unref()
  node.addEventListener('stop', () => {
    clearInterval(timer)
    node.removeEventListener('peer:disconnect', onDisconnect)
  })
}
