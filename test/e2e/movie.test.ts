/**
 * `submit --movie`: two `blendnet worker` processes (a fake Blender that
 * writes grey PNGs) render a job whose frame list has gaps and a step;
 * once the last frame is in, FFmpeg encodes them, and ffprobe counts the
 * frames of the movie. Without FFmpeg, or with a movie path that cannot
 * be written, submit stops before any network work; a failed encoding
 * keeps every frame and says why.
 */
import assert from 'node:assert/strict'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execa } from 'execa'
import { findBlender } from '../../src/blender/install.js'
import { packagePath } from '../../src/common/paths.js'
import { makeDemoScene } from '../../src/demo/demo-scene.js'
import { CLI, startCliWorker, stopWorkers, TEST_ENV, type RunningWorker } from '../helpers/cli.js'
import { frameFiles } from '../helpers/frames.js'
import { tempDir } from '../helpers/swarm.js'

const SIDE = 16
const FAKE_BLENDER = packagePath('test', 'fixtures', 'fake-blender', 'blender-renders-well-and-counts')
const FAILING_FFMPEG = packagePath('test', 'fixtures', 'fake-ffmpeg', 'ffmpeg-fails-to-encode')
/** 1-5, 8, 10, 12, 14: nine frames, not one consecutive run. */
const FRAMES = '1-5,8,10-14x2'
const FRAME_COUNT = 9

const isFrame = (name: string): boolean => /^frame_\d{4}\.png$/.test(name)

const ffmpegMissing = (await execa('ffprobe', ['-version'], { reject: false })).exitCode !== 0

/** What ffprobe says of a movie's video stream: decoded frames, rate, container. */
async function probe (movie: string): Promise<{ frames: number, rate: string, format: string }> {
  const result = await execa('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0',
    '-show_entries', 'stream=nb_read_frames,r_frame_rate:format=format_name', '-of', 'json', movie])
  const info = JSON.parse(result.stdout) as { streams: Array<{ nb_read_frames: string, r_frame_rate: string }>, format: { format_name: string } }
  return { frames: Number(info.streams[0].nb_read_frames), rate: info.streams[0].r_frame_rate, format: info.format.format_name }
}

/** The mean luma (0-255) of a movie's first frame. */
async function meanLuma (movie: string): Promise<number> {
  const result = await execa('ffprobe', ['-v', 'error', '-f', 'lavfi', `movie=${movie},signalstats`,
    '-show_entries', 'frame_tags=lavfi.signalstats.YAVG', '-of', 'csv=p=0'])
  return Number(result.stdout.split('\n')[0])
}

describe('a movie from the finished frames', { timeout: 300_000, skip: ffmpegMissing && 'ffmpeg/ffprobe are not installed (Debian: apt-get install ffmpeg)' }, () => {
  let dir: string
  let scene: string
  let workers: RunningWorker[] = []

  async function submit (args: string[], env: Record<string, string> = {}) {
    const result = await execa(process.execPath, [CLI, 'submit', scene, ...args], {
      reject: false, timeout: 120_000, env: { ...TEST_ENV, ...env }
    })
    return { code: result.exitCode, out: String(result.stdout), err: String(result.stderr) }
  }

  const swarm = (): string[] => ['--bootstrap', workers[0].addr]

  before(async () => {
    dir = await tempDir('blendnet-movie-')
    scene = join(dir, 'scene.blend')
    await makeDemoScene(await findBlender(), scene, { frames: 20, width: SIDE, height: SIDE })
    const env = { FAKE_BLENDER_COUNT_LOG: join(dir, 'rendered.log'), FAKE_BLENDER_FRAME_SIZE: String(SIDE) }
    const extra = ['--blender', FAKE_BLENDER, '--sandbox', 'none']
    const first = await startCliWorker(join(dir, 'worker 1'), [], extra, env)
    workers = [first, await startCliWorker(join(dir, 'worker 2'), [first.addr], extra, env)]
  })

  after(async () => {
    await stopWorkers(workers)
    await rm(dir, { recursive: true, force: true })
  })

  it('encodes every frame of the job, gaps and step included, at the scene\'s frame rate', async () => {
    const output = join(dir, 'renders')
    const movie = join(output, 'shot.mp4')
    const result = await submit(['--frames', FRAMES, '--chunk-size', '2', '--output', output, '--movie', movie, ...swarm()])
    assert.equal(result.code, 0, `${result.out}\n${result.err}`)
    assert.match(result.out, /^movie: encoding 9 frames at 24 fps into /m)
    assert.deepEqual(await probe(movie), { frames: FRAME_COUNT, rate: '24/1', format: 'mov,mp4,m4a,3gp,3g2,mj2' })
    assert.equal((await frameFiles(output)).filter(isFrame).length, FRAME_COUNT, 'the frames stay')
    assert.deepEqual((await readdir(output)).filter(name => name.includes('partial')), [])

    // Run again, every frame already there: no swarm needed, a new movie.
    await rm(movie)
    const again = await submit(['--frames', FRAMES, '--output', output, '--movie', movie])
    assert.equal(again.code, 0, `${again.out}\n${again.err}`)
    assert.doesNotMatch(again.out, /listening on/)
    assert.equal((await probe(movie)).frames, FRAME_COUNT)
  })

  it('takes the movie and its rate from a config file, and the container from the name', async () => {
    const project = join(dir, 'project')
    await mkdir(project)
    await writeFile(join(project, 'shot.toml'), '[submit]\nmovie = "movies/shot.mkv"\nmovie-fps = "12"\n')
    const result = await submit(['--config', join(project, 'shot.toml'), '--frames', '1-6', '--output', join(dir, 'at-12'), ...swarm()])
    assert.equal(result.code, 0, `${result.out}\n${result.err}`)
    assert.match(result.out, /^movie: \S+project\/movies\/shot\.mkv \(6 frames/m)
    assert.deepEqual(await probe(join(project, 'movies', 'shot.mkv')), { frames: 6, rate: '12/1', format: 'matroska,webm' })
  })

  it('encodes EXR frames the real Blender rendered, as bright as its PNG frames', async () => {
    // A swarm of its own: one worker with the real Blender.
    const real = await startCliWorker(join(dir, 'worker real'))
    try {
      const brightness: number[] = []
      for (const format of ['OPEN_EXR', 'PNG']) {
        const movie = join(dir, `real-${format}.mp4`)
        const result = await submit(['--frames', '1-3', '--format', format, '--output', join(dir, `real-${format}`),
          '--movie', movie, '--bootstrap', real.addr])
        assert.equal(result.code, 0, `${result.out}\n${result.err}`)
        assert.equal((await probe(movie)).frames, 3)
        brightness.push(await meanLuma(movie))
      }
      // Linear EXR shown as is would be far darker than the sRGB PNG.
      assert.ok(Math.abs(brightness[0] - brightness[1]) < 8, `EXR ${brightness[0]}, PNG ${brightness[1]}`)
    } finally {
      await stopWorkers([real])
    }
  })

  it('stops before any network work when FFmpeg is missing, in one sentence', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ BLENDNET_FFMPEG: join(dir, 'no-such-ffmpeg') }, /^blendnet: --movie needs FFmpeg, but BLENDNET_FFMPEG "\S+no-such-ffmpeg" cannot be run; install it/],
      [{ PATH: join(dir, 'empty-bin') }, /^blendnet: --movie needs FFmpeg, but ffmpeg is not on PATH; install it \(Debian: sudo apt-get install ffmpeg\)/]
    ]
    for (const [env, message] of cases) {
      const result = await submit(['--output', join(dir, 'never'), '--movie', join(dir, 'never.mp4'), ...swarm()], env)
      assert.equal(result.code, 2, `${result.out}\n${result.err}`)
      assert.match(result.err, message)
      assert.equal(result.err.trim().split('\n').length, 1, result.err)
      assert.equal(result.out, '', 'nothing started: no swarm line, no job')
    }
  })

  it('stops the same way on a movie it could not write or encode', async () => {
    const file = join(dir, 'a-file')
    await writeFile(file, 'not a folder')
    const cases: Array<[string[], RegExp]> = [
      [['--movie', join(file, 'shot.mp4')], /^blendnet: --movie "\S+shot\.mp4" cannot be written: \S+a-file is not a folder \(a file is in its path\)$/],
      [['--movie', dir], /^blendnet: --movie "\S+" must end in \.mp4, \.mov, \.mkv, \.webm/],
      [['--movie', join(dir, 'shot.mp4'), '--movie-fps', 'fast'], /^blendnet: --movie-fps "fast" is not a frame rate/],
      [['--movie-fps', '24'], /^blendnet: --movie-fps needs --movie <file>/]
    ]
    for (const [args, message] of cases) {
      const result = await submit(['--output', join(dir, 'never'), ...args, ...swarm()])
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.out}\n${result.err}`)
      assert.match(result.err, message)
      assert.equal(result.err.trim().split('\n').length, 1, result.err)
    }
  })

  it('keeps every frame when the encoding fails, and exits 3 with FFmpeg\'s last line', async () => {
    const output = join(dir, 'failed-movie')
    const movie = join(output, 'shot.mp4')
    const result = await submit(['--frames', FRAMES, '--output', output, '--movie', movie, ...swarm()],
      { BLENDNET_FFMPEG: FAILING_FFMPEG })
    assert.equal(result.code, 3, `${result.out}\n${result.err}`)
    assert.match(result.out, /done: 9 frames/)
    assert.match(result.err, /^blendnet: the movie failed \(ffmpeg: Conversion failed!\); the 9 frames are all in \S+failed-movie$/m)
    assert.equal((await frameFiles(output)).filter(isFrame).length, FRAME_COUNT)
    const left = await readdir(output)
    assert.ok(!left.includes('shot.mp4'), 'no movie under the real name')
    assert.deepEqual(left.filter(name => name.includes('partial')), [], 'the partial movie is removed')
  })
})
