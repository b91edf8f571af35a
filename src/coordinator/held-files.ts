/**
 * The job's files as they were at submit. Each is held open and served
 * through /proc/self/fd, so an artist who saves the scene again while the
 * farm renders (Blender writes a new file and renames it over the old
 * one) does not change what the workers get: they render what was
 * submitted. Where /proc is missing the files are served by their paths.
 */
import { existsSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import type { ManifestFile } from '../net/wire.js'

const FD_DIR = '/proc/self/fd'

export class HeldFiles {
  private readonly handles: FileHandle[] = []

  /** The files with paths that keep reading what they hold now. */
  async open (files: ManifestFile[]): Promise<ManifestFile[]> {
    if (!existsSync(FD_DIR)) return files
    const held: ManifestFile[] = []
    for (const file of files) {
      const handle = await open(file.path, 'r')
      this.handles.push(handle)
      held.push({ ...file, path: `${FD_DIR}/${handle.fd}` })
    }
    return held
  }

  async close (): Promise<void> {
    await Promise.all(this.handles.splice(0).map(async h => { await h.close() }))
  }
}
