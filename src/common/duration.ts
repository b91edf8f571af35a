import { UsageError } from './errors.js'

const UNITS: Record<string, number> = {
  ms: 1, s: 1000, m: 60_000, h: 3_600_000
}

/**
 * Parses `500ms`, `90s`, `10m`, `1h30m` or a bare number of seconds into
 * milliseconds. `what` names the flag in the error message; `allowZero`
 * lets 0 mean "never" for flags that can be turned off.
 */
export function parseDuration (text: string, what: string,
  opts: { allowZero?: boolean } = {}): number {
  const trimmed = text.trim()
  if (opts.allowZero === true && /^0+(\.0+)?(ms|s|m|h)?$/.test(trimmed)) return 0
  if (/^\d+(\.\d+)?$/.test(trimmed) && Number(trimmed) > 0) return Number(trimmed) * 1000

  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  const joined = parts.map(p => p[0]).join('')
  if (parts.length === 0 || joined !== trimmed) {
    throw new UsageError(
      `${what} "${text}" is not a duration; write it like 90s, 10m or 1h30m`)
  }
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]], 0)
  if (ms <= 0) throw new UsageError(`${what} must be longer than zero, not "${text}"`)
  return ms
}

/** 61_000 → `1m01s`, for progress lines. */
export function formatDuration (ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
}
