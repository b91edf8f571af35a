/**
 * A job's files: the .blend and every external file its scene reads,
 * each by its SHA-256, with the scan that found them. The coordinator
 * serves each file by hash; a worker fetches the ones it lacks and
 * rebuilds the layout (src/worker/job-files.ts).
 */
import { stat } from 'node:fs/promises'
import { dependencyFiles, type Dependency } from '../blender/dependencies.js'
import { hashFile } from '../net/fetch.js'
import { JobManifestCodec, type JobManifest } from '../net/wire.js'

export interface BuiltManifest {
  manifest: JobManifest
  bytes: Uint8Array
}

/** Hashes the .blend and every existing dependency file, once each. */
export async function buildManifest (blendPath: string,
  dependencies: Dependency[]): Promise<BuiltManifest> {
  const present = dependencies.filter(d => d.exists)
  const paths = [...new Set([blendPath, ...dependencyFiles(present)])]
  const files = []
  for (const path of paths) {
    files.push({ path, sha256: await hashFile(path), size: (await stat(path)).size })
  }
  const manifest: JobManifest = { blendPath, files, dependencies: present }
  return { manifest, bytes: JobManifestCodec.encode(manifest) }
}
