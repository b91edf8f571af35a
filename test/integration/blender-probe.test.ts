/**
 * The start-up probe against this machine's real Blender, and against
 * fake Blenders (test/fixtures/fake-blender/) that each fail it in one
 * way seen on real workers. Every failure must be a BlenderUnhealthyError
 * whose one-sentence message names the Blender and the reason.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'
import { findBlender, type BlenderInstall } from '../../src/blender/install.js'
import {
  BlenderUnhealthyError, healthSummary, probeBlender, type ProbeOptions
} from '../../src/blender/probe.js'
import { fakeBlender } from '../fixtures/blender-scenes.js'

/** Rejects with a BlenderUnhealthyError whose reason matches `reason`. */
async function assertUnhealthy (
  blender: BlenderInstall, reason: RegExp, opts?: ProbeOptions
): Promise<BlenderUnhealthyError> {
  const err = await probeBlender(blender, opts)
    .then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof BlenderUnhealthyError, `not unhealthy: ${err}`)
  assert.equal(err.name, 'BlenderUnhealthyError')
  assert.match(err.reason, reason)
  assert.equal(err.message, `Blender at "${blender.path}" ${err.reason}.`)
  assert.ok(!err.message.includes('\n'), 'the message is one line')
  return err
}

describe('probe of the real Blender', () => {
  it('reports what this Blender renders, in a few seconds', async t => {
    const blender = await findBlender()
    const started = performance.now()
    const caps = await probeBlender(blender)
    const seconds = (performance.now() - started) / 1000
    t.diagnostic(`probe took ${seconds.toFixed(2)} s: ${healthSummary(caps)}`)

    assert.equal(caps.blenderVersion, blender.version)
    assert.deepEqual(caps.engines,
      ['CYCLES', 'BLENDER_EEVEE', 'BLENDER_WORKBENCH'])
    // Debian's 3.4.1 has no OpenImageDenoise, and this machine no GPU.
    assert.deepEqual(caps.denoisers, [])
    assert.deepEqual(caps.gpuDevices, [])
    assert.equal(caps.ffmpeg, true)
    assert.equal(caps.cpuCount, availableParallelism())
    assert.ok(caps.memoryBytes > 2 ** 30, `${caps.memoryBytes} bytes`)
    // ~1.5 s warm, ~4 s with a cold shader cache; it runs at every start.
    assert.ok(seconds < 10, `the probe took ${seconds.toFixed(1)} s`)
  })

  it('kills a Blender that overruns the time limit', async () => {
    const blender = await findBlender()
    await assertUnhealthy(blender, /^did not finish its .* within 0.2 s$/,
      { timeoutMs: 200 })
  })
})

describe('probe with fake Blenders', () => {
  it('names the missing library of a Blender that cannot start', async () => {
    const blender = fakeBlender('blender-cannot-start')
    await assertUnhealthy(blender, new RegExp('^cannot start: error while ' +
      'loading shared libraries: libOpenImageDenoise\\.so\\.1 \\(exit 127\\)$'))
  })

  it('says so when there is no Blender at the path', async () => {
    await assertUnhealthy(fakeBlender('no-such-blender'),
      /^cannot start: it does not exist$/)
  })

  it('gives the exception of a probe script that fails', async () => {
    await assertUnhealthy(fakeBlender('blender-probe-fails'), new RegExp(
      "^failed its self-test: ModuleNotFoundError: No module named '_cycles'" +
      ' \\(exit 1\\)$'))
  })

  it('blames a crash on the engine being tested', async () => {
    const err = await assertUnhealthy(fakeBlender('blender-crashes-in-eevee'),
      /^died of SIGSEGV during its BLENDER_EEVEE test render$/)
    assert.ok(err.logTail.includes(
      'blendnet-probe-stage: BLENDER_EEVEE test render'))
  })

  it('kills a Blender that hangs, naming the render it hung in', async () => {
    await assertUnhealthy(fakeBlender('blender-probe-hangs'),
      /^did not finish its CYCLES test render within 1 s$/,
      { timeoutMs: 1000 })
  })

  it('rejects with the abort reason when cancelled', async () => {
    const controller = new AbortController()
    const probe = probeBlender(fakeBlender('blender-probe-hangs'),
      { signal: controller.signal })
    controller.abort(new Error('worker stopping'))
    await assert.rejects(probe, /worker stopping/)
  })

  it('fails another program that prints no report', async () => {
    await assertUnhealthy(fakeBlender('not-blender'),
      /^printed no probe report \(it last printed "Python 3\.11\.7"\)$/)
  })

  it('fails a report that does not follow the format', async () => {
    await assertUnhealthy(fakeBlender('blender-probe-bad-report'),
      new RegExp('^printed a probe report blendnet cannot read ' +
        '\\(bad or missing "blenderVersion"\\)$'))
  })

  it('fails a Blender that reports renders it never saved', async () => {
    await assertUnhealthy(fakeBlender('blender-probe-saves-nothing'),
      /^cannot render: its CYCLES test frame was never saved$/)
  })

  it('fails a Blender whose frames are all black', async () => {
    await assertUnhealthy(fakeBlender('blender-renders-black'),
      /^cannot render: its CYCLES test frame is all black$/)
  })

  it('announces only the engines whose frame is a real image', async () => {
    const caps = await probeBlender(fakeBlender('blender-with-optix-no-eevee'))
    assert.deepEqual(caps.engines, ['CYCLES'])
    assert.deepEqual(caps.denoisers, ['OPENIMAGEDENOISE', 'OPTIX'])
    assert.deepEqual(caps.gpuDevices.map(d => d.type), ['CUDA', 'OPTIX'])
    assert.equal(caps.ffmpeg, false)
    assert.match(healthSummary(caps), new RegExp('^Blender 3\\.4\\.1: ' +
      'CYCLES; NVIDIA RTX A4000 \\(CUDA/OPTIX\\) and CPU \\(\\d+ cores, ' +
      '[\\d.]+ GiB\\); denoiser OPENIMAGEDENOISE, OPTIX; no FFmpeg$'))
  })
})
