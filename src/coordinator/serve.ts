/**
 * How the coordinator serves each of its request protocols: a peer over
 * its rate limit is refused before anything is read, and a request that
 * breaks is aborted and counted against the peer under `brokenKind`.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { messageOf } from '../common/errors.js'
import type { CoordinatorContext } from './context.js'

function saidNothing (err: unknown): boolean {
  return err instanceof Error && err.name === 'UnexpectedEOFError' && /while reading 0\//.test(err.message)
}

export async function serve (ctx: CoordinatorContext, protocol: string, brokenKind: string,
  handle: (ctx: CoordinatorContext, stream: Stream, connection: Connection) => Promise<void>,
  onBroken: (err: unknown) => boolean = () => false): Promise<void> {
  await ctx.node.handle(protocol, (stream, connection) => {
    const peer = connection.remotePeer.toString()
    if (!ctx.admit(peer)) {
      stream.abort(new Error('too many requests'))
      return
    }
    handle(ctx, stream, connection).catch((err) => {
      stream.abort(err as Error)
      // Closed before its first byte, it said nothing: a peer that gave
      // up waiting (its own timeout, or it stopped) is not a broken one.
      if (saidNothing(err)) return
      // onBroken handles what is not the peer's fault (a full disk).
      if (!onBroken(err)) ctx.reject(peer, brokenKind, messageOf(err))
    })
  })
}
