/**
 * Blender versions, "major.minor" or "major.minor.patch", compared as
 * numbers: '3.10' is newer than '3.4', and '3.4' equals '3.4.0'.
 */

const VERSION_STRING = /^\d+(\.\d+)*$/

function versionParts (version: string): number[] {
  if (!VERSION_STRING.test(version)) {
    throw new RangeError(`"${version}" is not a version like 3.4 or 3.4.1`)
  }
  return version.split('.').map(Number)
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions (a: string, b: string): number {
  const pa = versionParts(a)
  const pb = versionParts(b)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (diff !== 0) return Math.sign(diff)
  }
  return 0
}

/** "3.4.1" >= "3.4"? False for anything that is not a version. */
export function atLeastVersion (have: string, need: string): boolean {
  try {
    return compareVersions(have, need) >= 0
  } catch {
    return false
  }
}
