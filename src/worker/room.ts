/**
 * What a worker can render now: its Blender's capabilities, plus the room
 * it has for one job's files (its --max-job-size, or its free disk less a
 * margin for frames and Blender's temp files), and whose jobs it takes.
 */
import { statfs } from 'node:fs/promises'
import { MAX_TOLD_COORDINATORS } from '../common/constants.js'
import type { WorkerCapabilities } from '../job/requirements.js'

/** Room kept free beside a job's files, for its frames and Blender's temp files. */
const DISK_MARGIN_BYTES = 1024 ** 3

export async function capabilitiesWithRoom (capabilities: WorkerCapabilities, workDirRoot: string,
  { maxJobBytes, allowedCoordinators }: { maxJobBytes?: number, allowedCoordinators?: ReadonlySet<string> } = {}
): Promise<WorkerCapabilities> {
  const disk = await statfs(workDirRoot).catch(() => undefined)
  const free = disk === undefined ? Infinity : disk.bavail * disk.bsize - DISK_MARGIN_BYTES
  const room = Math.min(free, maxJobBytes ?? Infinity)
  // 0 on the wire means "no limit": a full disk offers 1 byte.
  return {
    ...capabilities,
    maxJobBytes: room === Infinity ? 0 : Math.max(1, Math.floor(room)),
    // Told to coordinators, so that one not on the list knows not to wait.
    coordinators: allowedCoordinators === undefined || allowedCoordinators.size > MAX_TOLD_COORDINATORS
      ? undefined
      : [...allowedCoordinators]
  }
}
