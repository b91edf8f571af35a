/**
 * The generated animated scene used by `blendnet demo`, the end-to-end
 * tests and the benchmarks (scripts/make_demo_scene.py).
 */
import { execa } from 'execa'
import type { BlenderInstall } from '../blender/install.js'
import { packagePath } from '../common/paths.js'

export interface DemoSceneOptions {
  frames?: number
  width?: number
  height?: number
  samples?: number
}

export async function makeDemoScene (blender: BlenderInstall, out: string,
  opts: DemoSceneOptions = {}): Promise<void> {
  const script = packagePath('scripts', 'make_demo_scene.py')
  const args = [
    '-b', '--factory-startup', '--python-exit-code', '1', '-P', script, '--',
    out,
    '--frames', String(opts.frames ?? 24),
    '--res', `${opts.width ?? 64}x${opts.height ?? 36}`,
    '--samples', String(opts.samples ?? 4)
  ]
  const result = await execa(blender.path, args, { all: true, reject: false, timeout: 120_000 })
  if (result.exitCode !== 0) {
    throw new Error(`generating the demo scene failed: ${result.all?.split('\n').slice(-5).join('\n')}`)
  }
}
