/**
 * The Blender driver: finding Blender, reading a .blend's scenes, and
 * rendering chunks of frames into a chunk directory.
 */
export {
  compareVersions, findBlender, parseBlenderVersion, type BlenderInstall
} from './install.js'
export {
  inspectBlend, type BlendInfo, type InspectOptions, type SceneInfo
} from './scene-info.js'
export {
  ProcessChunkRenderer, type ChunkRenderer, type ChunkRenderRequest,
  type ChunkRenderResult
} from './driver.js'
export {
  BlendUnreadableError, BlenderNotFoundError, ChunkDirNotEmptyError,
  ChunkRenderError
} from './errors.js'
export { CHUNK_LOG_NAME } from './chunk-files.js'
export {
  BlenderUnhealthyError, PROBE_TIMEOUT_MS, healthSummary, probeBlender,
  type GpuDevice, type ProbeOptions, type WorkerCapabilities
} from './probe.js'
