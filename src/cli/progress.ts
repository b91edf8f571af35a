/**
 * Turns a job's events into the lines `submit` prints, and its outcome
 * into the closing summary.
 */
import { formatDuration } from '../common/duration.js'
import type { JobEvent, JobOutcome } from '../coordinator/events.js'
import { formatFrameList } from '../job/frames.js'
import { count, printable, say } from './console.js'

function short (peer: string): string {
  return `…${peer.slice(-6)}`
}

export function printEvent (event: JobEvent): void {
  switch (event.type) {
    case 'waiting-for-workers':
      say(`waiting for workers… none has joined yet (${formatDuration(event.waitedMs)})`)
      break
    case 'worker-joined':
      say(`worker ${short(event.worker)} joined: ${event.summary}` +
        (event.unmet.length > 0 ? ` — cannot render this job: ${event.unmet.join('; ')}` : ''))
      break
    case 'chunk-granted':
      say(`frames ${formatFrameList(event.frames)} → worker ${short(event.worker)}`)
      break
    case 'frame-done':
      say(`frame ${event.frame} done (${event.done}/${event.total}) from ${short(event.worker)}`)
      break
    case 'frame-rejected':
      say(`frame ${event.frame} from ${short(event.worker)} rejected: ${printable(event.reason)}`)
      break
    case 'chunk-failed':
      say(`frames ${formatFrameList(event.frames)} failed on ${short(event.worker)}: ${printable(event.reason)}` +
        (event.final ? ' (giving up on it)' : ' (will retry elsewhere)'))
      break
    case 'lease-expired':
      say(`worker ${short(event.worker)} went silent; frames ${formatFrameList(event.frames)} are open again`)
      break
    case 'chunk-released':
      say(`worker ${short(event.worker)} is stopping; frames ${formatFrameList(event.frames)} are open again`)
      break
    case 'message-rejected':
      break
  }
}

/** The closing lines: what was rendered, what failed and why. */
export function printSummary (outcome: JobOutcome, outputDir: string,
  elapsedMs: number): void {
  const rejected = Object.entries(outcome.rejected)
  if (rejected.length > 0) {
    say(`refused messages: ${rejected.map(([k, n]) => `${k} ${n}`).join(', ')}`)
  }
  if (outcome.succeeded) {
    say(`done: ${count(outcome.total, 'frame')} in ${outputDir} (${formatDuration(elapsedMs)})`)
    return
  }
  say(`job failed: ${outcome.failedFrames.length} of ${count(outcome.total, 'frame')} not rendered (${outcome.done} done, in ${outputDir})`)
  const byReason = new Map<string, number[]>()
  for (const { frame, reason } of outcome.failedFrames) {
    const frames = byReason.get(reason)
    if (frames === undefined) byReason.set(reason, [frame])
    else frames.push(frame)
  }
  for (const [reason, frames] of byReason) {
    say(`  ${frames.length === 1 ? 'frame' : 'frames'} ${formatFrameList(frames)}: ${printable(reason)}`)
  }
}
