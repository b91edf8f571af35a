/**
 * `submit --movie out.mp4`: once every frame is in --output, FFmpeg
 * encodes them into one movie (movie-encode.ts). Whatever could stop the
 * encoding (no FFmpeg, no encoder for the container, a path that cannot
 * be written, an unknown frame rate) is checked here, before any network
 * work, so that a long render never ends in a movie that cannot be made.
 */
import { constants } from 'node:fs'
import { access, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, extname, join, resolve } from 'node:path'
import { execa } from 'execa'
import { UsageError } from '../common/errors.js'
import { stringFlag, type Options, type Parsed } from './args.js'
import { encodeMovie } from './movie-encode.js'
import type { JobPlan } from './submit-plan.js'

export const MOVIE_OPTIONS: Options = {
  movie: { type: 'string' },
  'movie-fps': { type: 'string' }
}

export const MOVIE_HELP = `  --movie <file>           once every frame is in, encode them with FFmpeg into
                           this movie (.mp4, .mkv, .mov or .webm); the frames stay
  --movie-fps <rate>       the movie's frame rate, e.g. 24, 29.97 or 24000/1001
                           (default: the scene's)
`

/** How each container is written: the muxer and the video encoder. */
export interface Container { muxer: string, encoder: string }

const CONTAINERS: Record<string, Container> = {
  '.mp4': { muxer: 'mp4', encoder: 'libx264' },
  '.mov': { muxer: 'mov', encoder: 'libx264' },
  '.mkv': { muxer: 'matroska', encoder: 'libx264' },
  '.webm': { muxer: 'webm', encoder: 'libvpx-vp9' }
}

export interface MovieRequest {
  /** Absolute path of the movie to write. */
  path: string
  /** The FFmpeg to run: $BLENDNET_FFMPEG, else `ffmpeg` on PATH. */
  ffmpeg: string
  container: Container
  /** --movie-fps as FFmpeg reads a rate: `24`, `29.97`, `24000/1001`. */
  rate?: string
}

/** The movie asked for, checked; undefined without --movie. */
export async function movieFromFlags (parsed: Parsed,
  env: NodeJS.ProcessEnv = process.env): Promise<MovieRequest | undefined> {
  const flag = stringFlag(parsed, 'movie')
  const rateText = stringFlag(parsed, 'movie-fps')
  if (flag === undefined) {
    if (rateText !== undefined) throw new UsageError('--movie-fps needs --movie <file>, the movie to encode')
    return undefined
  }
  if (flag === '') throw new UsageError('--movie needs a file name, e.g. --movie shot.mp4')
  const container = CONTAINERS[extname(flag).toLowerCase()]
  if (container === undefined) {
    throw new UsageError(`--movie "${flag}" must end in ${Object.keys(CONTAINERS).join(', ')}, which say how to encode it`)
  }
  const rate = rateText === undefined ? undefined : parseRate(rateText)
  const ffmpeg = env.BLENDNET_FFMPEG !== undefined && env.BLENDNET_FFMPEG !== '' ? env.BLENDNET_FFMPEG : 'ffmpeg'
  await checkFfmpeg(ffmpeg, container.encoder, flag)
  const path = resolve(flag)
  await checkMoviePath(path, flag)
  return { path, ffmpeg, container, rate }
}

/** `24`, `29.97` or `24000/1001`, from 0.001 to 1000 frames a second. */
export function parseRate (text: string): string {
  const fraction = /^(\d+)\/(\d+)$/.exec(text.trim())
  const value = fraction !== null
    ? Number(fraction[1]) / Number(fraction[2])
    : /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN
  if (!Number.isFinite(value) || value < 0.001 || value > 1000) {
    throw new UsageError(`--movie-fps "${text}" is not a frame rate; write it like 24, 29.97 or 24000/1001`)
  }
  return text.trim()
}

/** Blender's fps / fps_base as FFmpeg reads it: 24, or 24000/1001. */
export function sceneRate (fps: number, base: number): string {
  if (Math.abs(base - 1) < 1e-6) return String(fps)
  return `${Math.round(fps * 1000)}/${Math.round(base * 1000)}`
}

async function checkFfmpeg (ffmpeg: string, encoder: string, movie: string): Promise<void> {
  const where = ffmpeg === 'ffmpeg' ? 'ffmpeg is not on PATH' : `BLENDNET_FFMPEG "${ffmpeg}" cannot be run`
  const result = await execa(ffmpeg, ['-hide_banner', '-encoders'], { reject: false, stdin: 'ignore', timeout: 30_000 })
  if (result.failed && result.exitCode === undefined) {
    throw new UsageError(`--movie needs FFmpeg, but ${where}; install it (Debian: sudo apt-get install ffmpeg) or set BLENDNET_FFMPEG`)
  }
  if (result.exitCode !== 0) {
    throw new UsageError(`--movie needs FFmpeg, but "${ffmpeg} -encoders" failed with exit code ${result.exitCode}`)
  }
  if (!new RegExp(`^\\s*V\\S*\\s+${encoder}\\s`, 'm').test(String(result.stdout))) {
    throw new UsageError(`--movie "${movie}" needs FFmpeg's ${encoder} encoder, which ${ffmpeg} lacks; choose another container or install Debian's ffmpeg`)
  }
}

/** The movie's folder is made if missing and must take a new file. */
async function checkMoviePath (path: string, flag: string): Promise<void> {
  const existing = await stat(path).catch(() => undefined)
  if (existing?.isDirectory() === true) throw new UsageError(`--movie "${flag}" is a folder, not a file`)
  const folder = dirname(path)
  try {
    await mkdir(folder, { recursive: true })
    await access(folder, constants.W_OK)
    const probe = join(folder, `.${basename(path)}.write-test-${process.pid}`)
    await writeFile(probe, '')
    await rm(probe)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    // mkdir says EEXIST, open ENOTDIR, when a folder on the way is a file.
    const why = code === 'EEXIST' || code === 'ENOTDIR'
      ? `${folder} is not a folder (a file is in its path)`
      : code ?? (err as Error).message
    throw new UsageError(`--movie "${flag}" cannot be written: ${why}`)
  }
}

/**
 * What submit does once the job is over and every frame is in: encode
 * the movie (exit code 0, or 3 when only the movie failed), or nothing.
 * Throws a UsageError now, before any network work, when no frame rate
 * is known.
 */
export function movieAfterJob (movie: MovieRequest | undefined,
  plan: JobPlan): () => Promise<number> {
  if (movie === undefined) return async () => 0
  const rate = movie.rate ?? (plan.frameRate === undefined
    ? undefined
    : sceneRate(plan.frameRate.fps, plan.frameRate.base))
  if (rate === undefined) {
    throw new UsageError('--movie needs --movie-fps here: this machine\'s Blender cannot read the scene\'s frame rate')
  }
  const frames = plan.spec.chunks.flat()
  return async () => await encodeMovie({
    ...movie, rate, frames, format: plan.spec.settings.format, outputDir: plan.outputDir
  })
}
