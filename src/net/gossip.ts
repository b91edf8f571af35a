/**
 * The jobs topic's validator, shared by coordinators and workers: a
 * message that does not decode is rejected (and counts against the
 * neighbour that sent it: see gossip-scoring.ts); one of another protocol
 * version is ignored.
 */
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { messageOf } from '../common/errors.js'
import { decodeSwarmMessage } from './wire.js'

export function validateSwarmMessage (msg: Message,
  onReject: (reason: string) => void): TopicValidatorResult {
  try {
    return decodeSwarmMessage(msg.data) === undefined
      ? TopicValidatorResult.Ignore
      : TopicValidatorResult.Accept
  } catch (err) {
    onReject(messageOf(err))
    return TopicValidatorResult.Reject
  }
}
