/**
 * The job's files as they were at submit. Each is held open and served
 * through /proc/self/fd, so an artist who saves the scene again while the
 * farm renders (Blender writes a new file and renames it over the old
 * one) does not change what the workers get: they render what was
 * submitted. A file written over in place does change what is held: that
 * is watched for, and ends the job (coordinator.ts). Where /proc is
 * missing the files are served by their paths, and a save by rename
 * counts as a change too.
 */
import { existsSync } from 'node:fs'
import { open, stat, type FileHandle } from 'node:fs/promises'
import { basename } from 'node:path'
import type { ManifestFile } from '../net/wire.js'

const FD_DIR = '/proc/self/fd'

/** What a file looked like when held: a write in place changes it. */
interface Held { name: string, path: string, size: number, mtimeMs: number }

/** How often the held files are looked at for a write in place. */
const CHECK_MS = 2000

export class HeldFiles {
  private readonly handles: FileHandle[] = []
  private held: Held[] = []
  private watching?: NodeJS.Timeout

  /** Calls `onChange` once, with its name, when a held file is written over. */
  watch (onChange: (name: string) => void): void {
    this.watching = setInterval(() => {
      void this.changed().then((name) => {
        if (name === undefined || this.watching === undefined) return
        clearInterval(this.watching)
        this.watching = undefined
        onChange(name)
      })
    }, CHECK_MS)
  }

  /** The files with paths that keep reading what they hold now. */
  async open (files: ManifestFile[]): Promise<ManifestFile[]> {
    const served: ManifestFile[] = []
    for (const file of files) {
      let path = file.path
      if (existsSync(FD_DIR)) {
        const handle = await open(file.path, 'r')
        this.handles.push(handle)
        path = `${FD_DIR}/${handle.fd}`
      }
      const { size, mtimeMs } = await stat(path)
      this.held.push({ name: basename(file.path), path, size, mtimeMs })
      served.push({ ...file, path })
    }
    return served
  }

  /**
   * The name of a file written over in place since it was held (a copy
   * onto it, a tool that rewrites it): what it holds is no longer what
   * the job's hashes say. A save by rename leaves the held file as it was.
   */
  async changed (): Promise<string | undefined> {
    for (const file of this.held) {
      const now = await stat(file.path).catch(() => undefined)
      if (now === undefined || now.size !== file.size || now.mtimeMs !== file.mtimeMs) return file.name
    }
    return undefined
  }

  async close (): Promise<void> {
    clearInterval(this.watching)
    this.watching = undefined
    this.held = []
    await Promise.all(this.handles.splice(0).map(async h => { await h.close() }))
  }
}
