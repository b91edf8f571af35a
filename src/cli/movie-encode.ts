/**
 * Encodes a finished job's frames into one movie with FFmpeg. The input
 * follows the job's own frame list, whatever its gaps, steps or negative
 * frames: each frame is linked, in order, into a temporary folder as
 * 000000.png, 000001.png, ..., which FFmpeg's image2 reader takes as one
 * sequence at the given rate. The movie is written under a temporary
 * name and renamed into place, so a failed or interrupted encoding never
 * leaves a half movie under the real name; the frames are never touched.
 */
import { mkdtemp, rename, rm, stat, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { execa } from 'execa'
import { logger } from '../common/log.js'
import { extensionOf, frameFileName, type ImageFormat } from '../job/naming.js'
import { count, say } from './console.js'
import type { Container } from './movie.js'

const log = logger('movie')

/** `submit`'s exit code when every frame is in but the movie failed. */
export const MOVIE_FAILED_EXIT_CODE = 3

export interface MovieJob {
  path: string
  ffmpeg: string
  container: Container
  /** Frames per second as FFmpeg reads it: `24`, `24000/1001`. */
  rate: string
  frames: number[]
  format: ImageFormat
  /** Where the frames are, under blendnet's names. */
  outputDir: string
}

/** Returns 0 with the movie in place, or MOVIE_FAILED_EXIT_CODE. */
export async function encodeMovie (job: MovieJob): Promise<number> {
  const frames = [...job.frames].sort((a, b) => a - b)
  say(`movie: encoding ${count(frames.length, 'frame')} at ${job.rate} fps into ${job.path}`)
  const sequence = await mkdtemp(join(tmpdir(), 'blendnet-movie-'))
  const partial = join(dirname(job.path), `.${basename(job.path)}.partial-${process.pid}`)
  try {
    await linkSequence(sequence, frames, job)
    const result = await execa(job.ffmpeg, ffmpegArgs(job, sequence, partial), {
      reject: false, stdin: 'ignore', all: true
    })
    if (result.exitCode !== 0) {
      const why = lastLine(String(result.all ?? '')) ??
        (result.signal !== undefined ? `killed by ${result.signal}` : `exit code ${result.exitCode ?? 'unknown'}`)
      log.error('movie failed', { path: job.path, err: why })
      process.stderr.write(`blendnet: the movie failed (ffmpeg: ${why}); the ${count(frames.length, 'frame')} are all in ${job.outputDir}\n`)
      return MOVIE_FAILED_EXIT_CODE
    }
    await rename(partial, job.path)
    const { size } = await stat(job.path)
    say(`movie: ${job.path} (${count(frames.length, 'frame')}, ${(size / 1024).toFixed(0)} KiB)`)
    return 0
  } finally {
    await rm(partial, { force: true })
    await rm(sequence, { recursive: true, force: true })
  }
}

async function linkSequence (folder: string, frames: number[], job: MovieJob): Promise<void> {
  const ext = extensionOf(job.format)
  for (const [i, frame] of frames.entries()) {
    const target = join(job.outputDir, frameFileName(frame, job.format))
    await symlink(target, join(folder, `${String(i).padStart(6, '0')}${ext}`))
  }
}

export function ffmpegArgs (job: MovieJob, sequence: string, out: string): string[] {
  const ext = extensionOf(job.format)
  // EXR holds linear light: shown as is it would look dark.
  const linear = ext === '.exr' ? ['-apply_trc', 'iec61966_2_1'] : []
  const quality = job.container.encoder === 'libx264'
    ? ['-crf', '18', '-preset', 'medium']
    : ['-crf', '30', '-b:v', '0']
  const faststart = job.container.muxer === 'mp4' ? ['-movflags', '+faststart'] : []
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-framerate', job.rate, '-start_number', '0', ...linear,
    '-i', join(sequence, `%06d${ext}`),
    // 4:2:0 video needs even sizes: pad by one pixel rather than scale.
    '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2',
    '-c:v', job.container.encoder, '-pix_fmt', 'yuv420p', ...quality, ...faststart,
    '-f', job.container.muxer, out
  ]
}

function lastLine (text: string): string | undefined {
  const lines = text.split('\n').map(l => l.trim()).filter(l => l !== '')
  return lines.at(-1)
}
