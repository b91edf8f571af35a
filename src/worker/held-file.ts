/**
 * One job file on a worker, whole or in the making: which of its pieces
 * are here and verified, which are being fetched, and where they are. A
 * file being fetched lives at `<blob>.part`, each verified piece written
 * at its offset; it is renamed to its blob path only once the whole
 * file's SHA-256 matches. The verified pieces survive a failed fetch, so
 * the next attempt resumes from them.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, rm, type FileHandle } from 'node:fs/promises'
import type { ServedFile } from '../net/piece-server.js'
import { Bitfield, pieceCount, pieceRange, type PieceList } from '../net/pieces.js'
import { TransferError } from '../net/streams.js'

export class HeldFile implements ServedFile {
  readonly have: () => Bitfield
  readonly fetching: () => Bitfield
  readonly held: Bitfield
  readonly inFlight: Bitfield
  complete = false
  private handle?: FileHandle

  constructor (readonly sha256: Uint8Array, readonly size: number,
    readonly pieces: PieceList, private readonly finalPath: string) {
    const count = pieceCount(size, pieces.pieceBytes)
    this.held = new Bitfield(count)
    this.inFlight = new Bitfield(count)
    this.have = () => this.held
    this.fetching = () => this.inFlight
  }

  get pieceBytes (): number {
    return this.pieces.pieceBytes
  }

  get partPath (): string {
    return `${this.finalPath}.part`
  }

  path (): string {
    return this.complete ? this.finalPath : this.partPath
  }

  /** The whole file is already at its blob path, verified. */
  markComplete (): void {
    for (let i = 0; i < this.held.size; i++) this.held.set(i)
    this.complete = true
  }

  /** Starts again from nothing: the blob went away or did not match. */
  async reset (): Promise<void> {
    await this.closeHandle()
    for (let i = 0; i < this.held.size; i++) this.held.clear(i)
    this.complete = false
    await rm(this.partPath, { force: true })
  }

  /** Opens the part file for writing, creating it at full size if new. */
  async openForPieces (): Promise<void> {
    if (this.handle !== undefined) return
    if (this.held.count === 0) {
      const created = await open(this.partPath, 'w')
      await created.truncate(this.size)
      await created.close()
    }
    this.handle = await open(this.partPath, 'r+')
  }

  async writePiece (index: number, bytes: Uint8Array): Promise<void> {
    if (this.handle === undefined) throw new TransferError('piece arrived after the fetch ended')
    const { start } = pieceRange(index, this.size, this.pieceBytes)
    await this.handle.write(bytes, 0, bytes.byteLength, start)
    this.held.set(index)
  }

  /**
   * Every piece is here: checks the whole file's hash and moves it into
   * place. A mismatch (the manifest's piece hashes do not add up to the
   * file it names) starts the file over.
   */
  async finish (): Promise<void> {
    await this.closeHandle()
    const hash = createHash('sha256')
    for await (const block of createReadStream(this.partPath)) hash.update(block as Buffer)
    if (!hash.digest().equals(this.sha256)) {
      await this.reset()
      throw new TransferError('the file assembled from verified pieces does not match its SHA-256')
    }
    await rename(this.partPath, this.finalPath)
    this.complete = true
  }

  async closeHandle (): Promise<void> {
    const handle = this.handle
    this.handle = undefined
    await handle?.close().catch(() => {})
  }
}
