/**
 * Renews a chunk's lease while the worker renders it. A renewal the
 * coordinator refuses means the chunk is no longer ours (the lease lapsed
 * and someone else took it): `onLost` stops the work. A renewal that
 * fails to arrive is retried at the next beat; the lease outlives a few.
 * When none has arrived for a whole lease, the coordinator has reopened
 * the chunk (or is gone): that is a loss too.
 */
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import type { CoordinatorClient } from './coordinator-client.js'

const log = logger('worker')

export class LeaseKeeper {
  private readonly timer: NodeJS.Timeout

  constructor (client: CoordinatorClient, chunkId: number, leaseMs: number,
    onLost: (reason: string) => void) {
    let confirmed = Date.now()
    this.timer = setInterval(() => {
      client.renew(chunkId).then((reply) => {
        if (!reply.ok) onLost(reply.reason)
        confirmed = Date.now()
      }, (err) => {
        log.warn('lease renewal failed', { job: client.jobId, chunk: chunkId, err: messageOf(err) })
        if (Date.now() - confirmed > leaseMs) {
          this.stop()
          onLost(`no renewal reached the coordinator for ${Math.round((Date.now() - confirmed) / 1000)} s, so the lease has lapsed`)
        }
      })
    }, Math.max(1000, leaseMs / 3))
  }

  stop (): void {
    clearInterval(this.timer)
  }
}
