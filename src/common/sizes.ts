import { UsageError } from './errors.js'

const UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40
}

/** Parses `500MB`, `20GiB`, `1.5TB` or a bare number of bytes. */
export function parseSize (text: string, what: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  const unit = UNITS[match?.[2].toLowerCase() ?? 'none']
  if (match === null || unit === undefined) {
    throw new UsageError(`${what} "${text}" is not a size; write it like 500MB or 20GiB`)
  }
  const bytes = Math.floor(Number(match[1]) * unit)
  if (bytes <= 0) throw new UsageError(`${what} must be more than zero bytes, not "${text}"`)
  return bytes
}

/** 1536 → `1.5 KiB`, for messages. */
export function formatSize (bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}
