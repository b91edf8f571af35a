/**
 * When to start a standby Blender (blender/standby.ts): as a submitting
 * peer connects, since its job follows as soon as it has read the scene,
 * and that reading takes about as long as a Blender start. A standby left
 * unused stops when that peer disconnects, or after STANDBY_IDLE_MS.
 * A worker with an --allow-coordinator list starts one only for those.
 */
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import type { SessionChunkRenderer } from '../blender/session.js'
import { isCoordinatorAgent, type SwarmNode } from '../net/node.js'
import type { WorkDir } from './work-dir.js'

const log = logger('worker:standby')

export function standByForSubmitters (node: SwarmNode, renderer: SessionChunkRenderer,
  workDir: WorkDir, allowedCoordinators?: ReadonlySet<string>): void {
  node.addEventListener('peer:identify', (evt) => {
    const { peerId, agentVersion } = evt.detail
    if (!isCoordinatorAgent(agentVersion)) return
    const peer = peerId.toString()
    if (allowedCoordinators !== undefined && !allowedCoordinators.has(peer)) return
    renderer.standBy(workDir.coordinatorDir(peer)).catch((err: unknown) => {
      log.warn('could not start a standby Blender', { peer, err: messageOf(err) })
    })
  })
  node.addEventListener('peer:disconnect', (evt) => {
    const folder = workDir.coordinatorDir(evt.detail.toString())
    renderer.dropStandby(folder).catch((err: unknown) => {
      log.warn('could not stop the standby Blender', { err: messageOf(err) })
    })
  })
}
