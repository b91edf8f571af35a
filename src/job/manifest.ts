/**
 * A job's files: the .blend and every external file its scene reads,
 * each by its SHA-256, with the scan that found them. The coordinator
 * serves each file by hash; a worker fetches the ones it lacks and
 * rebuilds the layout (src/worker/job-files.ts).
 */
import { dependencyFiles, type Dependency } from '../blender/dependencies.js'
import { PIECE_BYTES } from '../common/constants.js'
import { hashPieces } from '../net/pieces.js'
import { JobManifestCodec, type JobManifest } from '../net/wire.js'

export interface BuiltManifest {
  manifest: JobManifest
  bytes: Uint8Array
}

/**
 * Hashes the .blend and every existing dependency file, once each, whole
 * and in pieces (`pieceBytes`, for tests; default PIECE_BYTES).
 */
export async function buildManifest (blendPath: string,
  dependencies: Dependency[], pieceBytes = PIECE_BYTES): Promise<BuiltManifest> {
  const present = dependencies.filter(d => d.exists)
  const paths = [...new Set([blendPath, ...dependencyFiles(present)])]
  const files = []
  for (const path of paths) {
    const { sha256, size, pieceHashes } = await hashPieces(path, pieceBytes)
    files.push({ path, sha256, size, pieceBytes, pieceHashes })
  }
  const manifest: JobManifest = { blendPath, files, dependencies: present }
  return { manifest, bytes: JobManifestCodec.encode(manifest) }
}
