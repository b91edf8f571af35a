import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  describeOffer, healthSummary, unmetRequirements, type JobRequirements,
  type WorkerCapabilities
} from '../../src/job/requirements.js'

/** What the probe found on this machine: Debian's Blender 3.4.1. */
const debian: WorkerCapabilities = {
  blenderVersion: '3.4.1',
  engines: ['CYCLES', 'BLENDER_EEVEE', 'BLENDER_WORKBENCH'],
  denoisers: [],
  gpuDevices: [],
  ffmpeg: true,
  cpuCount: 2,
  memoryBytes: 25276194816
}

/** A GPU worker: Cycles lists its one card once per API. */
const gpuWorker: WorkerCapabilities = {
  blenderVersion: '4.2.3',
  engines: ['CYCLES', 'BLENDER_EEVEE_NEXT', 'BLENDER_WORKBENCH'],
  denoisers: ['OPENIMAGEDENOISE', 'OPTIX'],
  gpuDevices: [
    { type: 'CUDA', name: 'NVIDIA RTX A4000' },
    { type: 'OPTIX', name: 'NVIDIA RTX A4000' }
  ],
  ffmpeg: true,
  cpuCount: 16,
  memoryBytes: 64 * 2 ** 30
}

const cyclesCpu: JobRequirements = {
  minBlender: '3.4', engine: 'CYCLES', device: 'CPU'
}

describe('unmetRequirements', () => {
  it('meets a CPU Cycles job of its own version', () => {
    assert.deepEqual(unmetRequirements(cyclesCpu, debian), [])
    assert.deepEqual(unmetRequirements(
      { ...cyclesCpu, minBlender: '2.93' }, debian), [])
  })

  it('refuses a denoised scene without the denoiser (B19)', () => {
    const req = { ...cyclesCpu, denoiser: 'OPENIMAGEDENOISE' }
    assert.deepEqual(unmetRequirements(req, debian),
      ['needs denoiser OPENIMAGEDENOISE, has none'])
    assert.deepEqual(unmetRequirements(req, gpuWorker), [])
  })

  it('names the denoisers a worker has when it lacks the one asked', () => {
    const oidnOnly = { ...debian, denoisers: ['OPENIMAGEDENOISE'] }
    assert.deepEqual(
      unmetRequirements({ ...cyclesCpu, denoiser: 'OPTIX' }, oidnOnly),
      ['needs denoiser OPTIX, has OPENIMAGEDENOISE'])
  })

  it('refuses a GPU job on a CPU-only worker', () => {
    const req: JobRequirements = { ...cyclesCpu, device: 'GPU' }
    assert.deepEqual(unmetRequirements(req, debian),
      ['needs a GPU (CUDA/OptiX/HIP/oneAPI/Metal), has none'])
    assert.deepEqual(unmetRequirements(req, gpuWorker), [])
  })

  it('refuses a file saved by a newer Blender (B22)', () => {
    assert.deepEqual(
      unmetRequirements({ ...cyclesCpu, minBlender: '4.5' }, debian),
      ['needs Blender 4.5, has 3.4.1'])
    assert.deepEqual(
      unmetRequirements({ ...cyclesCpu, minBlender: '5.0' }, gpuWorker),
      ['needs Blender 5.0, has 4.2.3'])
  })

  it('compares versions as numbers, not as text', () => {
    assert.deepEqual(
      unmetRequirements({ ...cyclesCpu, minBlender: '3.10' }, debian),
      ['needs Blender 3.10, has 3.4.1'])
  })

  it('refuses an engine whose test render failed', () => {
    const cyclesOnly = { ...debian, engines: ['CYCLES'] }
    const req = { ...cyclesCpu, engine: 'BLENDER_EEVEE' }
    assert.deepEqual(unmetRequirements(req, cyclesOnly),
      ['needs engine BLENDER_EEVEE, has CYCLES'])
    assert.deepEqual(unmetRequirements(req, { ...debian, engines: [] }),
      ['needs engine BLENDER_EEVEE, has none'])
  })

  it("takes 4.2's BLENDER_EEVEE_NEXT for EEVEE, both ways", () => {
    const eevee = { ...cyclesCpu, engine: 'BLENDER_EEVEE' }
    const eeveeNext = { ...cyclesCpu, engine: 'BLENDER_EEVEE_NEXT' }
    assert.deepEqual(unmetRequirements(eevee, gpuWorker), [])
    assert.deepEqual(unmetRequirements(eeveeNext, debian), [])
  })

  it('takes a job of unknown engine on any worker with a working engine', () => {
    const unknown = { ...cyclesCpu, engine: '' }
    assert.deepEqual(unmetRequirements(unknown, debian), [])
    assert.deepEqual(unmetRequirements(unknown, { ...debian, engines: [] }),
      ['needs a working engine, has none'])
  })

  it('gives a job that runs scripts only to a worker that allows them', () => {
    const scripted = { ...cyclesCpu, scripts: true }
    assert.deepEqual(unmetRequirements(scripted, debian),
      ['needs Python scripts allowed, allows none'])
    assert.deepEqual(unmetRequirements(scripted, { ...debian, scripts: true }), [])
    assert.deepEqual(unmetRequirements(cyclesCpu, { ...debian, scripts: true }), [])
  })

  it('gives a job only to a worker with room for its files', () => {
    const big = { ...cyclesCpu, jobBytes: 3 * 2 ** 30 }
    assert.deepEqual(unmetRequirements(big, { ...debian, maxJobBytes: 2 ** 30 }),
      ['needs 3.0 GiB for its files, has room for 1.0 GiB (free disk space, or the worker\'s --max-job-size)'])
    assert.deepEqual(unmetRequirements(big, { ...debian, maxJobBytes: 0 }), [], '0: no limit')
    assert.deepEqual(unmetRequirements(big, debian), [])
  })

  it('gives a job only to a worker that takes jobs from its submitter', () => {
    const picky = { ...debian, coordinators: ['12D3KooWfriend'] }
    assert.deepEqual(unmetRequirements(cyclesCpu, picky, '12D3KooWstranger'),
      ['takes jobs only from other submitters (its --allow-coordinator list)'])
    assert.deepEqual(unmetRequirements(cyclesCpu, picky, '12D3KooWfriend'), [])
    assert.deepEqual(unmetRequirements(cyclesCpu, { ...debian, coordinators: [] }, '12D3KooWstranger'), [], 'empty: any')
    assert.deepEqual(unmetRequirements(cyclesCpu, picky), [], 'the worker judges its own list')
  })

  it('lists every unmet requirement, in a fixed order', () => {
    const req: JobRequirements = {
      minBlender: '5.0', engine: 'CYCLES', device: 'GPU', denoiser: 'OPTIX'
    }
    assert.deepEqual(unmetRequirements(req, { ...debian, engines: [] }), [
      'needs Blender 5.0, has 3.4.1',
      'needs engine CYCLES, has none',
      'needs a GPU (CUDA/OptiX/HIP/oneAPI/Metal), has none',
      'needs denoiser OPTIX, has none'
    ])
  })
})

describe('describeOffer', () => {
  it('sums up identical workers in one line', () => {
    assert.equal(describeOffer([debian, debian]),
      '2 workers: Blender 3.4.1, ' +
      'BLENDER_EEVEE/BLENDER_WORKBENCH/CYCLES, CPU only, no denoiser, no scripts')
  })

  it('merges what different workers offer, versions oldest first', () => {
    const newest = { ...debian, blenderVersion: '10.0.0' }
    assert.equal(describeOffer([gpuWorker, newest, debian]),
      '3 workers: Blender 3.4.1/4.2.3/10.0.0, ' +
      'BLENDER_EEVEE/BLENDER_EEVEE_NEXT/BLENDER_WORKBENCH/CYCLES, ' +
      'GPU (CUDA/OPTIX) on 1 of 3, denoiser OPENIMAGEDENOISE/OPTIX, no scripts')
  })

  it('says GPU without a count when every worker has one', () => {
    assert.equal(describeOffer([gpuWorker]),
      '1 worker: Blender 4.2.3, ' +
      'BLENDER_EEVEE_NEXT/BLENDER_WORKBENCH/CYCLES, GPU (CUDA/OPTIX), ' +
      'denoiser OPENIMAGEDENOISE/OPTIX, no scripts')
  })

  it('says where scripts are allowed', () => {
    assert.match(describeOffer([{ ...debian, scripts: true }, debian]), /, scripts allowed on 1 of 2$/)
    assert.match(describeOffer([{ ...debian, scripts: true }]), /, scripts allowed$/)
  })

  it('says when there is nobody', () => {
    assert.equal(describeOffer([]), 'no workers')
  })
})

describe('healthSummary', () => {
  it('describes a CPU-only worker', () => {
    assert.equal(healthSummary(debian),
      'Blender 3.4.1: CYCLES, BLENDER_EEVEE, BLENDER_WORKBENCH; ' +
      'CPU only (2 cores, 23.5 GiB); no denoiser; FFmpeg')
  })

  it('lists each GPU once, with every API it is reached by', () => {
    assert.equal(healthSummary({ ...gpuWorker, ffmpeg: false }),
      'Blender 4.2.3: CYCLES, BLENDER_EEVEE_NEXT, BLENDER_WORKBENCH; ' +
      'NVIDIA RTX A4000 (CUDA/OPTIX) and CPU (16 cores, 64.0 GiB); ' +
      'denoiser OPENIMAGEDENOISE, OPTIX; no FFmpeg')
  })
})
