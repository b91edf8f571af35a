/**
 * Blender's own progress within a frame, read from its `Fra:` lines, for
 * progress displays only (the chunk's verdict never depends on it):
 *
 *   Fra:1 Mem:10.02M (Peak 10.39M) | Time:00:00.03 | Remaining:00:00.02 |
 *     Mem:0.99M, Peak:0.99M | Scene, ViewLayer | Sample 1/16      (Cycles)
 *   Fra:1 Mem:10.96M (Peak 11.99M) | Time:00:00.39 |
 *     Rendering 26 / 64 samples                                  (EEVEE)
 *   Fra:1 ... | Scene, ViewLayer | Synchronizing object | Cube    (set-up)
 */

/** `Fra:12 ...`: the frame the line is about. */
const FRAME = /^Fra:(-?\d+)\s/

/** Cycles: `Sample 12/64`. */
const CYCLES_SAMPLE = /\bSample (\d+)\/(\d+)\b/

/** EEVEE: `Rendering 26 / 64 samples`. */
const EEVEE_SAMPLE = /\bRendering (\d+) \/ (\d+) samples\b/

/** Older Cycles: `Rendered 3/12 Tiles`. */
const TILES = /\bRendered (\d+)\/(\d+) Tiles\b/

/** Fields of the line that are not progress: memory, time, scene name. */
const BOOKKEEPING = /^(?:Fra:|Mem:|Time:|Remaining:|\S.*, ViewLayer$)/

const MAX_STATUS = 120

export interface RenderProgress {
  frame: number
  /** Samples (or tiles) done and planned; 0 when the line names none. */
  sample: number
  samples: number
  /** What Blender is doing, e.g. `Sample 12/64`, `Synchronizing object`. */
  status: string
}

/** The progress a `Fra:` line reports, or undefined for other lines. */
export function parseRenderProgress (line: string): RenderProgress | undefined {
  const frame = FRAME.exec(line)
  if (frame === null) return undefined
  const counted = CYCLES_SAMPLE.exec(line) ?? EEVEE_SAMPLE.exec(line) ?? TILES.exec(line)
  const sample = counted === null ? 0 : Number(counted[1])
  const samples = counted === null ? 0 : Number(counted[2])
  return {
    frame: Number(frame[1]),
    sample: sample <= samples ? sample : 0,
    samples: sample <= samples ? samples : 0,
    status: statusOf(line)
  }
}

/** The fields after Blender's bookkeeping, joined: `Synchronizing object | Cube`. */
function statusOf (line: string): string {
  const fields = line.split('|').map(f => f.trim()).filter(f => f !== '')
  const firstOwn = fields.findIndex(f => !BOOKKEEPING.test(f))
  const status = firstOwn === -1 ? '' : fields.slice(firstOwn).join(' | ')
  // Printable only: a display shows it as is.
  const clean = status.replace(/[\x00-\x1f\x7f-\x9f]/g, ' ')
  return clean.length > MAX_STATUS ? `${clean.slice(0, MAX_STATUS - 1)}…` : clean
}
