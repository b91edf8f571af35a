/**
 * A worker's share in its jobs' transfers: it fetches job files in pieces
 * (piece-fetcher.ts) and serves the pieces it holds verified to the other
 * peers of those jobs. It answers only for jobs it has taken (their
 * coordinator and id, and files in their manifest), reads only files it
 * finds by hash in its own work dir, and limits each peer's streams like
 * the coordinator does. In a private swarm only holders of the swarm key
 * can connect at all.
 */
import type { PeerId } from '@libp2p/interface'
import { logger } from '../common/log.js'
import { hex } from '../net/fetch.js'
import type { SwarmNode } from '../net/node.js'
import { PieceServer } from '../net/piece-server.js'
import type { PieceRequest } from '../net/piece-wire.js'
import { pieceListOf } from '../net/pieces.js'
import { DEFAULT_RATE_LIMIT, PeerRateLimit } from '../net/rate-limit.js'
import type { ManifestFile } from '../net/wire.js'
import { HeldFile } from './held-file.js'
import { PieceFetch } from './piece-fetcher.js'
import type { WorkDir } from './work-dir.js'

const log = logger('worker:sharing')

interface SharedJob { files: Map<string, ManifestFile> }

export class FileSharing {
  /** Piece bytes fetched from the coordinator and from other workers. */
  fetchedFromCoordinator = 0
  fetchedFromPeers = 0
  private readonly held = new Map<string, HeldFile>()
  private readonly jobs = new Map<string, SharedJob>()
  private readonly active = new Map<string, PieceFetch>()
  private readonly distrusted = new Set<string>()
  private readonly stopping = new AbortController()
  private readonly server: PieceServer
  private serving?: Promise<void>

  constructor (private readonly node: SwarmNode, private readonly workDir: WorkDir,
    private readonly onPiece?: (hash: string, index: number, from: string) => void) {
    const limit = new PeerRateLimit(node, DEFAULT_RATE_LIMIT)
    this.server = new PieceServer({
      node,
      admit: peer => limit.admit(peer),
      lookup: request => this.lookup(request),
      onAsked: (peer, request) => { this.active.get(hex(request.sha256))?.addPeer(peer) }
    })
  }

  /** Piece bytes this worker sent to others. */
  get bytesServed (): number {
    return this.server.bytesServed
  }

  /** Starts serving, once: on the first job taken. */
  async start (): Promise<void> {
    this.serving ??= this.server.start()
    await this.serving
  }

  get stopped (): boolean {
    return this.stopping.signal.aborted
  }

  async stop (): Promise<void> {
    this.stopping.abort()
    if (this.serving !== undefined) await this.server.stop()
  }

  /** Serve this job's files from now on, as far as they are here. */
  addJob (coordinator: string, jobId: string, files: ManifestFile[]): void {
    const byHash = new Map(files.filter(f => pieceListOf(f) !== undefined).map(f => [hex(f.sha256), f]))
    this.jobs.set(`${coordinator}/${jobId}`, { files: byHash })
  }

  /** The job is over: nobody may ask for its files any more. */
  forgetJob (coordinator: string, jobId: string): void {
    this.jobs.delete(`${coordinator}/${jobId}`)
  }

  /** The file is whole at its blob path, verified: serve all of it. */
  holdComplete (file: ManifestFile): void {
    this.heldFile(file)?.markComplete()
  }

  /** Fetches the file into its blob path, in pieces from whoever has them. */
  async fetch (coordinator: PeerId, jobId: string, file: ManifestFile): Promise<void> {
    const held = this.heldFile(file)
    if (held === undefined) throw new Error(`file ${hex(file.sha256)} has no piece list`)
    // Asked only when the blob is missing or changed: what we held is gone.
    if (held.complete) await held.reset()
    const hash = hex(file.sha256)
    const fetch = new PieceFetch({
      node: this.node, coordinator, jobId, file: held, distrusted: this.distrusted,
      signal: this.stopping.signal,
      onPiece: (index, from) => { this.onPiece?.(hash, index, from) }
    })
    this.active.set(hash, fetch)
    try {
      await fetch.run()
    } finally {
      this.active.delete(hash)
      this.fetchedFromCoordinator += fetch.bytesFromCoordinator
      this.fetchedFromPeers += fetch.bytesFromPeers
      log.debug('fetch ended', {
        job: jobId, hash: hash.slice(0, 16), held: held.held.count, of: held.held.size
      })
    }
  }

  private lookup (request: PieceRequest): HeldFile | undefined {
    const job = this.jobs.get(`${request.coordinator}/${request.jobId}`)
    const file = job?.files.get(hex(request.sha256))
    return file === undefined ? undefined : this.heldFile(file)
  }

  private heldFile (file: ManifestFile): HeldFile | undefined {
    const hash = hex(file.sha256)
    let held = this.held.get(hash)
    if (held === undefined) {
      const pieces = pieceListOf(file)
      if (pieces === undefined) return undefined
      held = new HeldFile(file.sha256, file.size, pieces, this.workDir.blobPath(hash))
      this.held.set(hash, held)
    }
    return held
  }
}
