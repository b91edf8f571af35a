import type { WorkerCapabilities } from '../../src/job/requirements.js'

/** What a CPU-only worker like this machine's offers. */
export function cpuWorker (blenderVersion = '3.4.1'): WorkerCapabilities {
  return {
    blenderVersion,
    engines: ['CYCLES', 'BLENDER_EEVEE', 'BLENDER_WORKBENCH'],
    denoisers: [],
    gpuDevices: [],
    ffmpeg: true,
    cpuCount: 2,
    memoryBytes: 8 * 1024 ** 3
  }
}
