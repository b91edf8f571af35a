/**
 * A job's files on a worker. The worker fetches the job's manifest, then
 * each file it does not already hold (the cache is by content hash and
 * shared across jobs), and rebuilds the artist's layout in the job dir
 * with hard links into the cache: files beside the .blend keep their
 * relative places, files from elsewhere go under blendnet-external/, and
 * the path map tells the render script where each one went.
 */
import { access, copyFile, link, mkdir, readFile, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { planJobLayout, type PathMap } from '../blender/dependencies.js'
import { logger } from '../common/log.js'
import { fetchBlob, hex } from '../net/fetch.js'
import type { SwarmNode } from '../net/node.js'
import { JobManifestCodec, type BlobRef, type ManifestFile } from '../net/wire.js'
import type { WorkDir } from './work-dir.js'

const log = logger('worker:files')

export interface PreparedJob {
  /** The .blend in the job dir, to hand to Blender. */
  blendPath: string
  pathMap: PathMap
}

export class JobFiles {
  private readonly fetches = new Map<string, Promise<string>>()
  private readonly prepared = new Map<string, Promise<PreparedJob>>()
  /** Bytes fetched from other peers since start, for logs and tests. */
  fetchedBytes = 0

  constructor (private readonly node: SwarmNode, private readonly workDir: WorkDir) {}

  /**
   * The job's files in place, prepared once however many chunks ask.
   * Keyed by the manifest's hash, not the job id a peer chose: another
   * peer announcing the same id cannot make a job render its files.
   */
  async prepare (jobId: string, from: PeerId, manifestRef: BlobRef): Promise<PreparedJob> {
    const key = hex(manifestRef.sha256)
    let pending = this.prepared.get(key)
    if (pending === undefined) {
      pending = this.build(jobId, from, manifestRef)
      this.prepared.set(key, pending)
      pending.catch(() => { this.prepared.delete(key) })
    }
    return pending
  }

  forget (manifestRef: BlobRef): void {
    this.prepared.delete(hex(manifestRef.sha256))
  }

  private async build (jobId: string, from: PeerId, manifestRef: BlobRef): Promise<PreparedJob> {
    const manifest = JobManifestCodec.decode(await readFile(await this.cached(from, manifestRef)))
    const byPath = new Map(manifest.files.map(f => [f.path, f]))
    const before = this.fetchedBytes
    for (const file of manifest.files) await this.cached(from, refOf(file))
    log.info('job files ready', {
      job: jobId, files: manifest.files.length, fetched: this.fetchedBytes - before
    })

    const jobDir = join(this.workDir.jobDir(from.toString(), jobId), `files-${hex(manifestRef.sha256).slice(0, 16)}`)
    await rm(jobDir, { recursive: true, force: true })
    const layout = planJobLayout(manifest.blendPath, manifest.dependencies, jobDir)
    for (const { from: source, to } of layout.copies) {
      const file = byPath.get(source)
      if (file === undefined) continue
      await place(this.workDir.blobPath(hex(file.sha256)), to)
    }
    return { blendPath: layout.blendPath, pathMap: layout.pathMap }
  }

  /** The file with this hash in the cache, fetched once if missing. */
  private async cached (from: PeerId, ref: BlobRef): Promise<string> {
    const hash = hex(ref.sha256)
    const path = this.workDir.blobPath(hash)
    if (await exists(path)) return path
    let pending = this.fetches.get(hash)
    if (pending === undefined) {
      pending = fetchBlob(this.node, from, ref, path).then(() => {
        this.fetchedBytes += ref.size
        return path
      })
      this.fetches.set(hash, pending)
      pending.finally(() => this.fetches.delete(hash)).catch(() => {})
    }
    return pending
  }
}

function refOf (file: ManifestFile): BlobRef {
  return { sha256: file.sha256, size: file.size, name: file.path }
}

/** A hard link into the cache; a copy where links cannot be made. */
async function place (cached: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true })
  await link(cached, to).catch(async () => { await copyFile(cached, to) })
}

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}
