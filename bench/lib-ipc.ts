/**
 * The benchmarks' parent side of IPC with their child processes: send a
 * command, wait for the reply of the type expected, fail on the child's
 * error reply, its exit, or a deadline.
 */
import type { ChildProcess } from 'node:child_process'

/** Every reply has a type; an `error` one says what went wrong. */
export interface ChildReply { type: string, message?: string }

export async function ask<Command, Reply extends ChildReply> (child: ChildProcess,
  command: Command, expected: Reply['type'], name: string, timeoutMs: number): Promise<Reply> {
  if (!child.connected) throw new Error(`${name} is gone`)
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { done(new Error(`${name}: no ${expected} in ${timeoutMs / 1000} s`)) }, timeoutMs)
    const onMessage = (reply: Reply): void => {
      if (reply.type === 'error') done(new Error(`${name}: ${reply.message ?? 'failed'}`))
      else if (reply.type === expected) done(undefined, reply)
    }
    const onExit = (code: number | null): void => { done(new Error(`${name} exited ${String(code)}`)) }
    function done (err?: Error, reply?: Reply): void {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (err !== undefined) reject(err)
      else resolve(reply as Reply)
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
    child.send(command as object)
  })
}
