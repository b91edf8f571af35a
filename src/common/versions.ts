/** "3.4.1" >= "3.4"? Compares major.minor(.patch) numerically. */
export function atLeastVersion (have: string, need: string): boolean {
  const a = have.split('.').map(Number)
  const b = need.split('.').map(Number)
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0
    const y = b[i] ?? 0
    if (Number.isNaN(x) || Number.isNaN(y)) return false
    if (x !== y) return x > y
  }
  return true
}
