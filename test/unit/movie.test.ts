/**
 * The pieces of `submit --movie` that need no FFmpeg run: reading a
 * frame rate, the scene's rate as FFmpeg reads it, and the command line
 * for each image format and container.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { UsageError } from '../../src/common/errors.js'
import { ffmpegArgs, type MovieJob } from '../../src/cli/movie-encode.js'
import { parseRate, sceneRate } from '../../src/cli/movie.js'

const job: MovieJob = {
  path: '/renders/shot.mp4',
  ffmpeg: 'ffmpeg',
  container: { muxer: 'mp4', encoder: 'libx264' },
  rate: '24',
  frames: [1, 2, 3],
  format: 'PNG',
  outputDir: '/renders'
}

describe('movie settings', () => {
  it('reads a frame rate as a whole number, a decimal or a fraction', () => {
    for (const rate of ['24', '29.97', '24000/1001', '0.5']) assert.equal(parseRate(rate), rate)
    for (const bad of ['fast', '0', '-24', '1/0', '24fps', '5000', '']) {
      assert.throws(() => parseRate(bad), UsageError, bad)
    }
  })

  it('gives the scene\'s fps / fps_base as FFmpeg reads it', () => {
    assert.equal(sceneRate(24, 1), '24')
    assert.equal(sceneRate(30, 1.0010000467300415), '30000/1001')
    assert.equal(sceneRate(25, 1), '25')
  })

  it('reads the frames as one numbered sequence at the rate, and pads odd sizes', () => {
    const args = ffmpegArgs(job, '/tmp/seq', '/renders/.shot.mp4.partial-1')
    const at = (flag: string): string => args[args.indexOf(flag) + 1]
    assert.equal(at('-framerate'), '24')
    assert.equal(at('-start_number'), '0')
    assert.equal(at('-i'), '/tmp/seq/%06d.png')
    assert.equal(at('-vf'), 'pad=ceil(iw/2)*2:ceil(ih/2)*2')
    assert.deepEqual([at('-c:v'), at('-pix_fmt'), at('-f')], ['libx264', 'yuv420p', 'mp4'])
    assert.equal(args.at(-1), '/renders/.shot.mp4.partial-1')
    assert.ok(!args.includes('-apply_trc'))
  })

  it('turns EXR\'s linear light into sRGB, and writes WebM with VP9', () => {
    const exr = ffmpegArgs({ ...job, format: 'OPEN_EXR', container: { muxer: 'webm', encoder: 'libvpx-vp9' } }, '/tmp/seq', '/out')
    assert.equal(exr[exr.indexOf('-apply_trc') + 1], 'iec61966_2_1')
    assert.ok(exr.indexOf('-apply_trc') < exr.indexOf('-i'), 'an input option')
    assert.equal(exr[exr.indexOf('-i') + 1], '/tmp/seq/%06d.exr')
    assert.deepEqual([exr[exr.indexOf('-c:v') + 1], exr[exr.indexOf('-f') + 1]], ['libvpx-vp9', 'webm'])
    assert.ok(!exr.includes('-movflags'))
  })
})
