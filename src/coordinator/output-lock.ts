/**
 * One submit per output folder: two writing the same frames would each
 * believe its own frames are there. The lock holds the submit's PID; a
 * lock left by a process that is gone (SIGKILL) is taken over.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { UsageError } from '../common/errors.js'
import { isAlive } from '../common/pid.js'

export async function lockOutput (outputDir: string, shownAs: string): Promise<() => Promise<void>> {
  const dir = join(outputDir, '.blendnet')
  const path = join(dir, 'submit.lock')
  // A folder that cannot take the lock cannot take the journal either:
  // that failure, with its own message, comes when the job writes. A file
  // in the way is said now, before any network work.
  const none = async (): Promise<void> => {}
  const made = await mkdir(dir, { recursive: true }).then(() => undefined, (err: NodeJS.ErrnoException) => err)
  if (made?.code === 'EEXIST' || made?.code === 'ENOTDIR') {
    throw new UsageError(`--output "${shownAs}" holds a file named .blendnet, where blendnet keeps the job's journal and logs; move it away and submit again`)
  }
  if (made !== undefined) return none
  try {
    await writeFile(path, String(process.pid), { flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return none
    const holder = Number(await readFile(path, 'utf8').catch(() => ''))
    if (holder !== process.pid && isAlive(holder)) {
      throw new UsageError(`--output "${shownAs}" is in use by another submit (process ${holder}); wait for it to end, or choose another folder`)
    }
    await writeFile(path, String(process.pid))
  }
  return async () => { await rm(path, { force: true }) }
}
