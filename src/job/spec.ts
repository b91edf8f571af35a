/**
 * What a job is, as the coordinator holds it: the scene file by content
 * hash, how to render it, and the frames cut into chunks.
 */
import { createHash } from 'node:crypto'
import type { ManifestFile, RenderSettings } from '../net/wire.js'
import type { ImageFormat } from './naming.js'
import type { JobRequirements } from './requirements.js'

/** The wire's render settings, with the format known to be an image one. */
export type JobSettings = RenderSettings & { format: ImageFormat }

export interface JobSpec {
  /** Derived from everything below, so the same submit is the same job. */
  jobId: string
  blend: { path: string, sha256: Uint8Array, size: number, name: string }
  /** The encoded JobManifest workers fetch by its hash. */
  manifest: { bytes: Uint8Array, sha256: Uint8Array }
  /** Every file of the job by its path here: served by hash. */
  files: ManifestFile[]
  settings: JobSettings
  /** What a worker's Blender must offer to render it as specified. */
  requirements: JobRequirements
  chunks: number[][]
}

export function jobIdOf (parts: Omit<JobSpec, 'jobId'>, outputDir: string): string {
  const hash = createHash('sha256')
  hash.update(parts.manifest.sha256)
  hash.update(JSON.stringify([parts.settings, parts.chunks, outputDir]))
  return hash.digest('hex').slice(0, 16)
}

/**
 * What a frame's pixels depend on: the job's files (by the manifest's
 * hash), every render setting and requirement (`--allow-scripts` is one),
 * but not the job id or the chunking, so a rerun with another
 * --chunk-size reuses the frames already journaled.
 */
export function renderKeyOf (spec: Pick<JobSpec, 'manifest' | 'settings' | 'requirements'>): string {
  const sorted = (o: object): Array<[string, unknown]> =>
    Object.entries(o).sort(([a], [b]) => a.localeCompare(b))
  const hash = createHash('sha256')
  hash.update(spec.manifest.sha256)
  hash.update(JSON.stringify([sorted(spec.settings), sorted(spec.requirements)]))
  return hash.digest('hex').slice(0, 32)
}
