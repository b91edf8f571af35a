/**
 * Encoding and decoding of every wire message (proto/blendnet.proto),
 * through protobufjs. Decoding is the trust boundary: sizes are checked
 * before parsing, and every decoded message is checked for the fields the
 * protocol needs, so the rest of the code handles only well-formed values.
 */
import protobuf from 'protobufjs'
import {
  MAX_CONTROL_MESSAGE_BYTES, MAX_GOSSIP_MESSAGE_BYTES, MAX_TOLD_COORDINATORS, PROTOCOL_VERSION
} from '../common/constants.js'
import { WireError } from '../common/errors.js'
import { packagePath } from '../common/paths.js'
import type { Dependency } from '../blender/dependencies.js'
import type { JobRequirements } from '../job/requirements.js'
import { checkPieceList } from './pieces.js'

export interface BlobRef { sha256: Uint8Array, size: number, name: string }
export interface RenderSettings {
  scene: string
  format: string
  width: number
  height: number
  /** Overrides; '' or 0 keeps the scene's own. */
  engine: string
  samples: number
  resolutionPercentage: number
  device: string
  /** Render without the files that were missing at submit (--allow-missing). */
  allowMissing?: boolean
}
export interface ChunkOffer { id: number, frames: number[] }
export interface Requirements {
  minBlender: string
  engine: string
  device: string
  denoiser: string
  scripts?: boolean
  jobBytes?: number
}
export interface Capabilities {
  blenderVersion: string
  engines: string[]
  denoisers: string[]
  gpuDevices: Array<{ type: string, name: string }>
  ffmpeg: boolean
  cpuCount: number
  memoryBytes: number
  scripts?: boolean
  /** 0 or absent: no limit. */
  maxJobBytes?: number
  /** Empty or absent: takes jobs from any submitter. */
  coordinators?: string[]
}
export interface JobAnnouncement {
  jobId: string
  blend: BlobRef
  settings: RenderSettings
  requirements: Requirements
  openChunks: ChunkOffer[]
  openCount: number
  coordinatorAddrs: Uint8Array[]
  leaseMs: number
  manifest: BlobRef
  priority?: number
  leasedCount?: number
  framesTotal?: number
  framesDone?: number
}
export interface ChunkGranted { jobId: string, chunkId: number, worker: string }
export interface JobFinished { jobId: string, succeeded: boolean }
export interface WorkerPresence {
  capabilities: Capabilities
  idle: boolean
  /** The job of the chunk being rendered; '' or absent when none. */
  jobId?: string
  /** The worker is stopping: count it gone now. */
  leaving?: boolean
}

export interface ManifestFile {
  path: string
  sha256: Uint8Array
  size: number
  /** 0 or absent: fetched whole (src/net/pieces.ts). */
  pieceBytes?: number
  pieceHashes?: Uint8Array[]
}
export interface JobManifest {
  blendPath: string
  files: ManifestFile[]
  dependencies: Dependency[]
}

export type SwarmMessage =
  | { job: JobAnnouncement }
  | { granted: ChunkGranted }
  | { finished: JobFinished }
  | { worker: WorkerPresence }

export interface Claim {
  jobId: string
  chunkId: number
  nonce: Uint8Array
  issuedAtMs: number
  capabilities: Capabilities
  signature: Uint8Array
}
export interface LeaseRenewal { jobId: string, chunkId: number }
export interface ChunkFailure {
  jobId: string
  chunkId: number
  reason: string
  logTail: string[]
}
export interface ChunkRelease { jobId: string, chunkId: number }
export type ClaimRequest =
  | { claim: Claim }
  | { renewal: LeaseRenewal }
  | { failure: ChunkFailure }
  | { release: ChunkRelease }
export interface ClaimReply {
  ok: boolean
  reason: string
  leaseMs: number
  frames: number[]
  chunkId?: number
  speculative?: boolean
  wait?: boolean
  excluded?: boolean
}
export interface FetchRequest { sha256: Uint8Array, offset: number }
export interface FetchReply { ok: boolean, reason: string, size: number }
export interface FrameResult {
  jobId: string
  chunkId: number
  frame: number
  size: number
  sha256: Uint8Array
}
export interface ChunkLog {
  jobId: string
  chunkId: number
  size: number
  sha256: Uint8Array
  failed: boolean
}
export interface ResultReply { accepted: boolean, reason: string, stale?: boolean }
export interface ChunkProgress {
  jobId: string
  chunkId: number
  frame: number
  sample: number
  samples: number
  status: string
}

/** Requirements on the wire: empty strings stand for "none". */
export function requirementsToWire (req: JobRequirements): Requirements {
  return { ...req, denoiser: req.denoiser ?? '', scripts: req.scripts === true, jobBytes: req.jobBytes ?? 0 }
}

export function requirementsFromWire (req: Requirements): JobRequirements {
  return {
    minBlender: req.minBlender,
    engine: req.engine,
    device: req.device === 'GPU' ? 'GPU' : 'CPU',
    denoiser: req.denoiser === '' ? undefined : req.denoiser,
    scripts: req.scripts === true,
    jobBytes: req.jobBytes ?? 0
  }
}

const root = protobuf.loadSync(packagePath('proto', 'blendnet.proto'))

let prepared = false

/**
 * protobufjs writes each message type's encoder and decoder the first
 * time it is used, 14 ms for the whole schema: otherwise paid on a job's
 * first announcement and first claim, when every peer is busiest.
 * Workers and coordinators call this at start, `submit` while Blender
 * reads the scene. Idempotent.
 */
export function prepareCodecs (): void {
  if (prepared) return
  prepared = true
  root.resolveAll()
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) nested.setup()
      if (nested instanceof protobuf.Namespace) visit(nested)
    }
  }
  visit(root)
}

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number, bytes: Uint8Array, defaults: true, arrays: true
}

/** A typed codec for one message type of the schema. */
export interface Codec<T> {
  encode: (value: T) => Uint8Array
  decode: (bytes: Uint8Array | { subarray: () => Uint8Array }) => T
}

export function codec<T> (name: string, maxBytes: number,
  check: (value: T) => void = () => {}): Codec<T> {
  const type = root.lookupType(`blendnet.v1.${name}`)
  return {
    encode: (value) => type.encode(type.fromObject(value as object)).finish(),
    decode: (input) => {
      const bytes = input instanceof Uint8Array ? input : input.subarray()
      if (bytes.byteLength > maxBytes) {
        throw new WireError(`${name} of ${bytes.byteLength} bytes exceeds ${maxBytes}`)
      }
      let value: T
      try {
        value = type.toObject(type.decode(bytes), TO_OBJECT) as T
      } catch (err) {
        throw new WireError(`malformed ${name}`, { cause: err })
      }
      check(value)
      return value
    }
  }
}

function require (condition: boolean, what: string): void {
  if (!condition) throw new WireError(what)
}

const MAX_ID = 128
const MAX_TEXT = 4096

/**
 * Ids become folder names on workers: letters, digits, '-' and '_' only,
 * so that no id can name a path ("../../home").
 */
const SAFE_ID = /^[A-Za-z0-9_-]+$/

function checkId (id: string, what: string): void {
  require(id.length > 0 && id.length <= MAX_ID, `${what} is empty or too long`)
  require(SAFE_ID.test(id), `${what} has characters other than letters, digits, - and _`)
}

function checkHash (hash: Uint8Array, what: string): void {
  require(hash.byteLength === 32, `${what} is not a SHA-256 hash`)
}

function checkArtistPath (path: string): void {
  const absolute = path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith('\\\\')
  require(absolute && path.length <= 4096 && !path.includes('\0'), `manifest path ${JSON.stringify(path.slice(0, 200))} is not an absolute path`)
  require(!path.split(/[\\/]/).some(part => part === '..' || part === '.'), `manifest path ${JSON.stringify(path.slice(0, 200))} has . or .. parts`)
}

function checkCapabilities (caps: Capabilities | undefined | null): void {
  if (caps === undefined || caps === null) throw new WireError('no capabilities')
  require(caps.blenderVersion.length > 0 && caps.blenderVersion.length <= MAX_ID,
    'capabilities without a Blender version')
  require(caps.engines.length <= 16 && caps.gpuDevices.length <= 64 &&
    caps.denoisers.length <= 16 && (caps.coordinators ?? []).length <= MAX_TOLD_COORDINATORS, 'capabilities list too long')
  require((caps.coordinators ?? []).every(id => id.length <= MAX_ID), 'coordinator id too long')
}

function checkSwarm (msg: Record<string, unknown>): void {
  require(msg.version !== undefined, 'SwarmMessage without version')
  // Another version's rules are not ours to judge: it is ignored, never
  // rejected, so peers of another release keep their place in the mesh.
  if (msg.version !== PROTOCOL_VERSION) return
  const job = msg.job as JobAnnouncement | undefined
  if (job !== undefined) {
    checkId(job.jobId, 'job id')
    require(job.blend !== undefined && job.blend !== null, 'job without blend')
    checkHash(job.blend.sha256, 'blend hash')
    require(job.manifest !== undefined && job.manifest !== null, 'job without manifest')
    checkHash(job.manifest.sha256, 'manifest hash')
    require(job.settings !== undefined && job.settings !== null, 'job without settings')
    // 0 by 0 is a job whose frame size the submitting machine could not read.
    require((job.settings.width === 0) === (job.settings.height === 0), 'job with half a frame size')
    require(job.requirements !== undefined && job.requirements !== null, 'job without requirements')
  }
  const worker = msg.worker as WorkerPresence | undefined
  if (worker !== undefined && worker !== null) {
    checkCapabilities(worker.capabilities)
    if ((worker.jobId ?? '') !== '') checkId(worker.jobId ?? '', 'presence job id')
  }
  const granted = msg.granted as ChunkGranted | undefined
  if (granted !== undefined) checkId(granted.jobId, 'job id')
  const finished = msg.finished as JobFinished | undefined
  if (finished !== undefined) checkId(finished.jobId, 'job id')
}

const swarmCodec = codec<Record<string, unknown>>(
  'SwarmMessage', MAX_GOSSIP_MESSAGE_BYTES, checkSwarm)

/** A gossip message, or undefined when it is of another version. */
export function decodeSwarmMessage (bytes: Uint8Array): SwarmMessage | undefined {
  const msg = swarmCodec.decode(bytes)
  if (msg.version !== PROTOCOL_VERSION) return undefined
  for (const key of ['job', 'granted', 'finished', 'worker']) {
    if (msg[key] !== undefined && msg[key] !== null) {
      return { [key]: msg[key] } as unknown as SwarmMessage
    }
  }
  throw new WireError('SwarmMessage without a body')
}

export function encodeSwarmMessage (msg: SwarmMessage): Uint8Array {
  return swarmCodec.encode({ version: PROTOCOL_VERSION, ...msg })
}

function oneOf<T> (msg: Record<string, unknown>, keys: string[],
  what: string): T {
  const present = keys.filter(k => msg[k] !== undefined && msg[k] !== null)
  require(present.length === 1, `${what} must carry exactly one request`)
  return { [present[0]]: msg[present[0]] } as T
}

const CLAIM_REQUEST_KINDS = ['claim', 'renewal', 'failure', 'release']

function checkClaimRequest (msg: Record<string, unknown>): void {
  const req = oneOf<ClaimRequest>(msg, CLAIM_REQUEST_KINDS, 'ClaimRequest')
  if ('claim' in req) {
    checkId(req.claim.jobId, 'job id')
    require(req.claim.nonce.byteLength >= 8 && req.claim.nonce.byteLength <= 64,
      'claim nonce must be 8 to 64 bytes')
    require(req.claim.signature.byteLength > 0, 'claim is not signed')
    checkCapabilities(req.claim.capabilities)
  } else if ('renewal' in req) {
    checkId(req.renewal.jobId, 'job id')
  } else if ('release' in req) {
    checkId(req.release.jobId, 'job id')
  } else {
    checkId(req.failure.jobId, 'job id')
    require(req.failure.reason.length <= MAX_TEXT, 'failure reason too long')
  }
}

const claimRequestCodec = codec<Record<string, unknown>>(
  'ClaimRequest', MAX_CONTROL_MESSAGE_BYTES, checkClaimRequest)

export const ClaimRequestCodec: Codec<ClaimRequest> = {
  encode: (req) => claimRequestCodec.encode(req),
  decode: (bytes) => oneOf<ClaimRequest>(claimRequestCodec.decode(bytes),
    CLAIM_REQUEST_KINDS, 'ClaimRequest')
}

export const ClaimCodec = codec<Claim>('Claim', MAX_CONTROL_MESSAGE_BYTES)
export const ClaimReplyCodec = codec<ClaimReply>('ClaimReply', MAX_CONTROL_MESSAGE_BYTES)
export const FetchRequestCodec = codec<FetchRequest>(
  'FetchRequest', MAX_CONTROL_MESSAGE_BYTES, (r) => { checkHash(r.sha256, 'fetch hash') })
export const FetchReplyCodec = codec<FetchReply>('FetchReply', MAX_CONTROL_MESSAGE_BYTES)
export const FrameResultCodec = codec<FrameResult>(
  'FrameResult', MAX_CONTROL_MESSAGE_BYTES, (r) => {
    checkId(r.jobId, 'job id')
    checkHash(r.sha256, 'frame hash')
  })
export const ChunkLogCodec = codec<ChunkLog>(
  'ChunkLog', MAX_CONTROL_MESSAGE_BYTES, (r) => {
    checkId(r.jobId, 'job id')
    checkHash(r.sha256, 'log hash')
  })
/** Manifests list every file of a scene: thousands for cache folders. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024

export const JobManifestCodec = codec<JobManifest>(
  'JobManifest', MAX_MANIFEST_BYTES, (m) => {
    require(m.blendPath.length > 0, 'manifest without a .blend')
    // Paths are the artist's absolute, normalised paths: anything else
    // (`..`, relative, NUL) is an attempt to place files elsewhere.
    for (const path of [m.blendPath, ...m.files.map(f => f.path)]) checkArtistPath(path)
    for (const f of m.files) checkHash(f.sha256, 'manifest file hash')
    for (const f of m.files) checkPieceList(f)
  })
export const ResultReplyCodec = codec<ResultReply>('ResultReply', MAX_CONTROL_MESSAGE_BYTES)
/** Progress is for display: a short status line, counts that add up. */
export const ChunkProgressCodec = codec<ChunkProgress>(
  'ChunkProgress', MAX_CONTROL_MESSAGE_BYTES, (p) => {
    checkId(p.jobId, 'job id')
    require(p.status.length <= 200, 'progress status too long')
    require(p.sample <= p.samples || p.samples === 0, 'progress sample beyond its total')
  })
