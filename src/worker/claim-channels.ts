/**
 * A worker's requests to a coordinator (claims, lease renewals, releases,
 * failure reports) go over one long-lived /blendnet/claim stream per
 * coordinator, one request at a time, instead of a stream each. Opening a
 * stream costs a protocol negotiation round trip and a peer store write on
 * both ends; when a job is announced every idle worker claims in the same
 * moment, and those costs queued on the coordinator are what made first
 * claims slow. So the stream is opened ahead, as soon as a coordinator
 * says it takes claims (identify), before its job is announced.
 *
 * A coordinator that answers one request per stream and closes it (the
 * protocol before channels) is still served: a closed channel is reopened.
 */
import type { PeerId, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import { CLAIM_PROTOCOL, CLAIM_TIMEOUT_MS } from '../common/constants.js'
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import { isCoordinatorAgent, type SwarmNode } from '../net/node.js'
import { framed, readMessage, writeMessage } from '../net/streams.js'
import { ClaimReplyCodec, ClaimRequestCodec, type ClaimReply, type ClaimRequest } from '../net/wire.js'

const log = logger('worker:claims')

interface Channel { stream: Stream, lp: LengthPrefixedStream<Stream> }

function usable (channel: Channel): boolean {
  const { stream } = channel
  return stream.status === 'open' && stream.writeStatus === 'writable' &&
    stream.remoteWriteStatus === 'writable'
}

export class ClaimChannels {
  /** By coordinator peer id; a pending open is shared by whoever needs it. */
  private readonly channels = new Map<string, Promise<Channel>>()
  /** The request last queued per coordinator: the next one waits for it. */
  private readonly lastInLine = new Map<string, Promise<void>>()

  constructor (private readonly node: SwarmNode) {}

  /** Sends one request and reads its reply, within CLAIM_TIMEOUT_MS in all. */
  async request (coordinator: PeerId, req: ClaimRequest): Promise<ClaimReply> {
    const signal = AbortSignal.timeout(CLAIM_TIMEOUT_MS)
    const peer = coordinator.toString()
    const before = this.lastInLine.get(peer) ?? Promise.resolve()
    let done = (): void => {}
    const mine = new Promise<void>((resolve) => { done = resolve })
    this.lastInLine.set(peer, mine)
    try {
      await untilAborted(before, signal)
      const channel = await untilAborted(this.channel(coordinator, signal), signal)
      try {
        await writeMessage(channel.lp, ClaimRequestCodec, req, signal)
        return await readMessage(channel.lp, ClaimReplyCodec, signal)
      } catch (err) {
        // A reply may still be on its way: the stream is out of step.
        // Aborted, it is closed, and so no longer handed out.
        channel.stream.abort(err as Error)
        throw err
      }
    } finally {
      done()
      if (this.lastInLine.get(peer) === mine) this.lastInLine.delete(peer)
    }
  }

  /** Opens the channel now, if there is none; failing is not an error. */
  openAhead (coordinator: PeerId): void {
    if (this.channels.has(coordinator.toString())) return
    this.channel(coordinator, AbortSignal.timeout(CLAIM_TIMEOUT_MS)).catch((err: unknown) => {
      log.debug('could not open a claim channel ahead', { peer: coordinator.toString(), err: messageOf(err) })
    })
  }

  private async channel (coordinator: PeerId, signal: AbortSignal): Promise<Channel> {
    const peer = coordinator.toString()
    const known = this.channels.get(peer)
    if (known !== undefined) {
      const channel = await known.catch(() => undefined)
      if (channel !== undefined && usable(channel)) return channel
      if (this.channels.get(peer) === known) this.channels.delete(peer)
    }
    const opening = this.node.dialProtocol(coordinator, CLAIM_PROTOCOL, { signal }).then((stream) => {
      const channel = { stream, lp: framed(stream) }
      stream.addEventListener('close', () => {
        if (this.channels.get(peer) === opening) this.channels.delete(peer)
      })
      // The coordinator's job ended, or it answers one request a stream.
      stream.addEventListener('remoteCloseWrite', () => { stream.close().catch(() => {}) })
      return channel
    })
    this.channels.set(peer, opening)
    opening.catch(() => { if (this.channels.get(peer) === opening) this.channels.delete(peer) })
    return await opening
  }
}

const perNode = new WeakMap<SwarmNode, ClaimChannels>()

/** The one set of claim channels of this node. */
export function claimChannelsOf (node: SwarmNode): ClaimChannels {
  let channels = perNode.get(node)
  if (channels === undefined) {
    channels = new ClaimChannels(node)
    perNode.set(node, channels)
  }
  return channels
}

/**
 * Opens a claim channel to every coordinator this node meets, once it
 * says it takes claims: at identify, or at the identify push that follows
 * when its job starts. Only to those of `allowed`, when given.
 */
export function openClaimChannelsAhead (node: SwarmNode, allowed?: ReadonlySet<string>): void {
  const coordinators = new Set<string>()
  const consider = (peerId: PeerId, agentVersion: string | undefined, protocols: string[]): void => {
    const peer = peerId.toString()
    // A push may leave the agent out: it was said at the first identify.
    if (isCoordinatorAgent(agentVersion)) coordinators.add(peer)
    if (!coordinators.has(peer) || !protocols.includes(CLAIM_PROTOCOL)) return
    if (allowed !== undefined && !allowed.has(peer)) return
    claimChannelsOf(node).openAhead(peerId)
  }
  node.addEventListener('peer:identify', (evt) => {
    consider(evt.detail.peerId, evt.detail.agentVersion, evt.detail.protocols)
  })
  node.addEventListener('peer:disconnect', (evt) => { coordinators.delete(evt.detail.toString()) })
  // Peers met before this was called (a bootstrap peer) are known by now.
  for (const peerId of new Set(node.getConnections().map(c => c.remotePeer))) {
    node.peerStore.get(peerId).then((peer) => {
      const agent = peer.metadata.get('AgentVersion')
      consider(peerId, agent === undefined ? undefined : new TextDecoder().decode(agent), peer.protocols)
    }, () => {})
  }
}

/** Rejects when `signal` aborts first; `promise` itself goes on. */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return await new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
  })
}
