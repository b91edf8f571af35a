/**
 * What a submit's node does as soon as it starts, before its job: while
 * Blender reads the scene, workers meet it and open their claim channels
 * (claim-handler.ts), and the gossip mesh of the jobs topic forms. None
 * of that is then left for the moment the job is announced, when every
 * idle worker claims at once.
 */
import { JOBS_TOPIC } from '../common/constants.js'
import type { SwarmNode } from '../net/node.js'
import { openClaimDesk } from './claim-handler.js'

export async function meetWorkersAhead (node: SwarmNode): Promise<void> {
  await openClaimDesk(node)
  node.services.pubsub.subscribe(JOBS_TOPIC)
}
