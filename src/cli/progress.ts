/**
 * Turns a job's events into the lines `submit` prints, and its outcome
 * into the closing summary.
 */
import { formatDuration } from '../common/duration.js'
import { NO_PEER_HINT, type JobEvent, type JobOutcome } from '../coordinator/events.js'
import type { ResumeCheck } from '../coordinator/journal.js'
import { formatFrameList } from '../job/frames.js'
import { count, printable, say } from './console.js'

function short (peer: string): string {
  return `…${peer.slice(-6)}`
}

export function printEvent (event: JobEvent): void {
  const line = describeEvent(event)
  if (line !== undefined) say(line)
}

/** "frame 7" or "frames 1-4". */
function framesWord (frames: number[]): string {
  return frames.length === 1 ? `frame ${frames[0]}` : `frames ${formatFrameList(frames)}`
}

function isAre (frames: number[]): string {
  return frames.length === 1 ? 'is' : 'are'
}

/** The plain line an event is told as; undefined for those not told. */
export function describeEvent (event: JobEvent): string | undefined {
  switch (event.type) {
    case 'waiting-for-workers':
      if (event.allLeft === true) return `waiting for workers… every worker left (${formatDuration(event.waitedMs)} ago)`
      return `waiting for workers… none has joined yet (${formatDuration(event.waitedMs)})` +
        (event.peers === 0 ? `; ${NO_PEER_HINT}` : '')
    case 'worker-joined':
      return `worker ${short(event.worker)} joined: ${event.summary}` +
        (event.unmet.length > 0 ? ` — cannot render this job: ${event.unmet.join('; ')}` : '')
    case 'worker-left':
      return `worker ${short(event.worker)} left (${event.stopped ? 'it stopped' : 'not heard from for a while'})`
    case 'chunk-granted':
      return `${framesWord(event.frames)} → worker ${short(event.worker)}` +
        (event.speculative === true ? ' (a copy: the first to deliver each frame wins)' : '')
    case 'frame-done':
      return `frame ${event.frame} done (${event.done}/${event.total}) from ${short(event.worker)}`
    case 'frame-rejected':
      return `frame ${event.frame} from ${short(event.worker)} rejected: ${printable(event.reason)}`
    case 'chunk-failed':
      return `${framesWord(event.frames)} failed on ${short(event.worker)}: ${printable(event.reason)}` +
        (event.final ? ' (not retried: these frames fail the job)' : ' (will retry elsewhere)')
    case 'lease-expired':
      return `worker ${short(event.worker)} went silent; ${framesWord(event.frames)} ${isAre(event.frames)} open again`
    case 'chunk-released':
      return `worker ${short(event.worker)} handed its chunk back (stopping or restarted); ${framesWord(event.frames)} ${isAre(event.frames)} open again`
    case 'message-rejected':
    case 'chunk-progress':
      // Counted in the summary; shown live by the terminal view and the
      // dashboard, too often for a line each.
      return undefined
  }
}

/**
 * What a rerun found in the output folder, said before the job is announced:
 * `resuming: 40 of 60 frames already in renders/ (checked against
 * renders/.blendnet/journal.jsonl); 20 to render`. Silent for a new job.
 */
export function printResume (check: ResumeCheck, total: number,
  outputDir: string, journal: string): void {
  if (check.done.size === 0 && check.changed.length === 0) return
  const left = total - check.done.size
  const changed = check.changed.length === 0
    ? ''
    : ` (${check.changed.length === 1 ? 'frame' : 'frames'} ${formatFrameList(check.changed)} missing, empty or changed since)`
  say(printable(`resuming: ${check.done.size} of ${count(total, 'frame')} already in ${outputDir} (checked against ${journal}); ` +
    `${left === 0 ? 'nothing' : left} to render${changed}`, 1000))
}

/** The closing lines: what was rendered, what failed and why. */
export function printSummary (outcome: JobOutcome, outputDir: string,
  elapsedMs: number): void {
  const rejected = Object.entries(outcome.rejected)
  if (rejected.length > 0) {
    // Mostly peers out of step (a worker still sending what a killed run
    // of this job granted it) or not allowed, rarely hostile ones.
    say(`refused messages (each is in the log with its peer): ${rejected.map(([k, n]) => `${k} ${n}`).join(', ')}`)
  }
  const rendered = outcome.done - outcome.alreadyThere
  if (outcome.succeeded) {
    const how = outcome.alreadyThere === 0
      ? ''
      : rendered === 0 ? ', all already there' : `: ${rendered} rendered now, ${outcome.alreadyThere} already there`
    say(`done: ${count(outcome.total, 'frame')} in ${outputDir}${how} (${formatDuration(elapsedMs)})`)
    return
  }
  const already = outcome.alreadyThere === 0 ? '' : `: ${rendered} rendered now, ${outcome.alreadyThere} already there`
  say(`job failed: ${outcome.failedFrames.length} of ${count(outcome.total, 'frame')} not rendered (${outcome.done} done${already}, in ${outputDir})`)
  const byReason = new Map<string, number[]>()
  for (const { frame, reason } of outcome.failedFrames) {
    const frames = byReason.get(reason)
    if (frames === undefined) byReason.set(reason, [frame])
    else frames.push(frame)
  }
  for (const [reason, frames] of byReason) {
    say(`  ${frames.length === 1 ? 'frame' : 'frames'} ${formatFrameList(frames)}: ${printable(reason)}`)
  }
  say('run the same command again to render only the frames still missing')
}
