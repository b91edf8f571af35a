/**
 * A child process of the transfer benchmark (transfer.ts) holding some of
 * its workers: real libp2p nodes and Workers whose "Blender" says when
 * the job's files are ready and then waits for the parent's `release`,
 * so that every worker takes one chunk and fetches the scene. It also
 * receives the raw TCP copy that the benchmark times for scale.
 * IPC: `start` → `ready`; `files-ready` per worker; `release`;
 * `raw` → `raw-done`; `stop` → `report`.
 */
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { connect } from 'node:net'
import type { ChunkRenderRequest, ChunkRenderResult } from '../src/blender/driver.js'
import { messageOf } from '../src/common/errors.js'
import type { FileSharing } from '../src/worker/file-sharing.js'
import { RendersSolidPngs } from '../test/helpers/fake-renderers.js'
import { HEIGHT, startWorker, stopAll, WIDTH, type TestWorker } from '../test/helpers/swarm.js'

export interface TransferWorkerReport {
  peer: string
  /** Piece bytes it fetched from the coordinator and from other workers. */
  fromCoordinator: number
  fromPeers: number
  /** Piece bytes it sent to other workers. */
  served: number
}

export type TransferHostCommand =
  | { type: 'start', bootstrap: string, workers: number }
  | { type: 'release' }
  | { type: 'raw', port: number, dest: string }
  | { type: 'stop' }
export type TransferHostReply =
  | { type: 'ready' }
  | { type: 'files-ready', peer: string }
  | { type: 'raw-done', bytes: number }
  | { type: 'report', workers: TransferWorkerReport[] }
  | { type: 'error', message: string }

let release: () => void = () => {}
const released = new Promise<void>(resolve => { release = resolve })

/** Says when a chunk's files are in place, then renders once released. */
class SaysWhenFilesAreReady extends RendersSolidPngs {
  private told = false

  constructor (private readonly peer: () => string) {
    super(WIDTH, HEIGHT)
  }

  override async render (req: ChunkRenderRequest): Promise<ChunkRenderResult> {
    if (!this.told) {
      this.told = true
      reply({ type: 'files-ready', peer: this.peer() })
    }
    await released
    return await super.render(req)
  }
}

const hosted: TestWorker[] = []

async function start (bootstrap: string, workers: number): Promise<void> {
  for (let i = 0; i < workers; i++) {
    let peer = ''
    const test = await startWorker(new SaysWhenFilesAreReady(() => peer), [bootstrap])
    peer = test.node.peerId.toString()
    hosted.push(test)
  }
}

/** The worker's file sharing; private, read here only to report. */
function sharingOf (test: TestWorker): FileSharing {
  return (test.worker as unknown as { files: { sharing: FileSharing } }).files.sharing
}

async function stop (): Promise<TransferHostReply> {
  const workers = hosted.map(test => {
    const sharing = sharingOf(test)
    return {
      peer: test.node.peerId.toString(),
      fromCoordinator: sharing.fetchedFromCoordinator,
      fromPeers: sharing.fetchedFromPeers,
      served: sharing.bytesServed
    }
  })
  await Promise.all(hosted.map(async (test) => {
    await stopAll(test.worker, test.node)
    await rm(test.workDir.root, { recursive: true, force: true })
  }))
  return { type: 'report', workers }
}

/** Receives one raw TCP copy into `dest`. */
async function receiveRaw (port: number, dest: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const out = createWriteStream(dest)
    let bytes = 0
    socket.on('data', (block) => { bytes += block.length })
    socket.on('error', reject)
    out.on('error', reject)
    out.on('finish', () => { resolve(bytes) })
    socket.pipe(out)
  })
}

function reply (message: TransferHostReply): void {
  process.send?.(message)
}

process.on('message', (command: TransferHostCommand) => {
  let work: Promise<void>
  if (command.type === 'start') {
    work = start(command.bootstrap, command.workers).then(() => { reply({ type: 'ready' }) })
  } else if (command.type === 'release') {
    release()
    work = Promise.resolve()
  } else if (command.type === 'raw') {
    work = receiveRaw(command.port, command.dest).then(bytes => { reply({ type: 'raw-done', bytes }) })
  } else {
    work = stop().then((report) => { process.send?.(report, () => { process.exit(0) }) })
  }
  work.catch((err: unknown) => {
    reply({ type: 'error', message: messageOf(err) })
    process.exitCode = 1
  })
})
