/**
 * Fetching a job's files while this worker renders another job's chunk,
 * so that its first chunk of the new job starts rendering at once instead
 * of after the download. Only jobs this worker could take are fetched, one
 * download per job, and a failure here costs nothing: the claim path
 * fetches (and reports) again.
 */
import { messageOf } from '../common/errors.js'
import { logger } from '../common/log.js'
import type { WorkerCapabilities } from '../job/requirements.js'
import type { JobFiles } from './job-files.js'
import type { KnownJob } from './known-job.js'

const log = logger('worker:prefetch')

export class Prefetches {
  private readonly pending = new Map<string, Promise<void>>()

  constructor (private readonly files: JobFiles,
    private readonly capabilitiesNow: () => Promise<WorkerCapabilities>) {}

  /** Starts fetching the job's files, unless already started. */
  start (key: string, job: KnownJob): void {
    if (this.pending.has(key) || job.ineligible !== undefined) return
    const fields = { job: job.announcement.jobId, peer: job.coordinator.toString() }
    const fetching = (async () => {
      // Room on disk as now, as a claim would check it.
      if (job.unmetBy(await this.capabilitiesNow()).length > 0) return
      log.info('fetching the files of the next job while rendering', fields)
      await this.files.prepare(job.announcement.jobId, job.coordinator, job.announcement.manifest)
    })().catch((err: unknown) => {
      log.info('fetching ahead failed; the files are fetched again when a chunk is granted', { ...fields, err: messageOf(err) })
    })
    this.pending.set(key, fetching)
  }

  /** Waits for the job's fetch, if any, to end: before its files are removed. */
  async forget (key: string): Promise<void> {
    const fetching = this.pending.get(key)
    this.pending.delete(key)
    await fetching
  }
}
