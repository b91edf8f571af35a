/**
 * Renews a chunk's lease while the worker renders it. A renewal the
 * coordinator refuses means the chunk is no longer ours (the lease lapsed
 * and someone else took it): `onLost` stops the work. A renewal that
 * fails to arrive is retried at the next beat; the lease outlives a few.
 */
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import type { CoordinatorClient } from './coordinator-client.js'

const log = logger('worker')

export class LeaseKeeper {
  private readonly timer: NodeJS.Timeout

  constructor (client: CoordinatorClient, chunkId: number, leaseMs: number,
    onLost: (reason: string) => void) {
    this.timer = setInterval(() => {
      client.renew(chunkId).then((reply) => {
        if (!reply.ok) onLost(reply.reason)
      }, (err) => {
        log.warn('lease renewal failed', { job: client.jobId, chunk: chunkId, err: messageOf(err) })
      })
    }, Math.max(1000, leaseMs / 3))
  }

  stop (): void {
    clearInterval(this.timer)
  }
}
