import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'

const MiB = 1024 * 1024

/** A file of `bytes` random bytes, written in 4 MiB blocks with backpressure. */
export async function writeRandomFile (path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path)
  const block = randomBytes(4 * MiB)
  for (let written = 0; written < bytes; written += block.length) {
    if (!out.write(block)) await new Promise<void>(resolve => { out.once('drain', () => { resolve() }) })
  }
  await new Promise<void>(resolve => { out.end(() => { resolve() }) })
}
