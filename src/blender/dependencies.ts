/**
 * The files outside a .blend that rendering it reads: textures, image
 * sequences, movies, linked libraries, simulation caches, fonts, sounds.
 * `inspectBlend` lists them (scripts/blender/dependencies.py); they must
 * reach the worker, or Blender renders a missing texture magenta and
 * exits 0 (case B09).
 *
 * A worker rebuilds the job's files in a job dir and hands the render
 * script a `PathMap` from each artist-side path to where it put it.
 */
import {
  basename, dirname, isAbsolute, join, relative, resolve, sep, win32
} from 'node:path'

export type DependencyKind =
  | 'image' | 'image-sequence' | 'udim' | 'movie' | 'library'
  | 'point-cache' | 'fluid-cache' | 'ocean-cache' | 'cache-file'
  | 'mesh-cache' | 'volume' | 'font' | 'sound' | 'ies' | 'osl-script'

export interface Dependency {
  kind: DependencyKind
  /** As written in the file: `//tex/wood.png`, `/abs/x.png`, `C:\...`. */
  stored: string
  /**
   * Resolved on the machine that scanned the file: the file itself, a
   * sequence's first frame, or a cache's folder. `//` paths resolve from
   * the folder of the file holding them: the .blend, or its library.
   */
  absolute: string
  /** Every file of it is there. */
  exists: boolean
  /** The concrete files: one, or every frame or cache file found. */
  files: string[]
  /**
   * The datablocks using it. Empty when only a fake user keeps it: a
   * render never reads it then.
   */
  users: string[]
}

/** An absolute path on the artist's machine → where a worker put it. */
export type PathMap = Record<string, string>

/** Kinds whose file a still-image render never reads. */
export const NOT_RENDERED_KINDS: readonly DependencyKind[] = ['sound']

/** Dependencies whose `absolute` is a folder of cache files. */
const CACHE_FOLDER_KINDS: readonly DependencyKind[] = [
  'point-cache', 'fluid-cache', 'ocean-cache'
]

/** Folder in a job dir for files that lived outside the .blend's folder. */
export const EXTERNAL_DIR = 'blendnet-external'

/** The scene needs files that are not there; the message names them. */
export class MissingDependenciesError extends Error {
  readonly blendPath: string
  readonly missing: Dependency[]

  constructor (blendPath: string, missing: Dependency[]) {
    super(`"${basename(blendPath)}" needs ${describeMissing(missing)}.`)
    this.name = 'MissingDependenciesError'
    this.blendPath = blendPath
    this.missing = missing
  }
}

/** Two files of a job would land on the same place in the job dir. */
export class JobLayoutError extends Error {
  constructor (from: string, other: string, to: string) {
    super(`Cannot lay out the job: "${from}" and "${other}" would both ` +
      `be copied to "${to}".`)
    this.name = 'JobLayoutError'
  }
}

/** `the image "/a/wood.png" (used by Wood), which is missing`, or more. */
export function describeMissing (missing: Dependency[]): string {
  const [first] = missing
  if (first === undefined) return 'nothing missing'
  const users = first.users.length > 0
    ? ` (used by ${first.users.slice(0, 3).join(', ')})`
    : ''
  const more = missing.length > 1
    ? ` and ${missing.length - 1} more missing files`
    : ', which is missing'
  return `the ${first.kind} "${first.absolute}"${users}${more}`
}

/** The dependencies that are not all there, in scan order. */
export function missingDependencies (deps: Dependency[]): Dependency[] {
  return deps.filter(d => !d.exists)
}

/** Missing files a render would read: these fail a chunk. */
export function missingForRender (deps: Dependency[]): Dependency[] {
  return missingDependencies(deps).filter(d =>
    d.users.length > 0 && !NOT_RENDERED_KINDS.includes(d.kind))
}

/** Every concrete file, once each, sorted. */
export function dependencyFiles (deps: Dependency[]): string[] {
  return [...new Set(deps.flatMap(d => d.files))].sort()
}

/** Why a path map cannot be used, or undefined when it can. */
export function pathMapProblem (map: PathMap): string | undefined {
  for (const [from, to] of Object.entries(map)) {
    if (!isAbsolute(from) && !isWindowsAbsolute(from)) {
      return `"${from}" is not an absolute path`
    }
    if (!isAbsolute(to)) return `"${to}" (for "${from}") is not absolute`
    if (from.includes('\0') || to.includes('\0')) {
      return `"${from}" holds a NUL character`
    }
  }
  return undefined
}

function isWindowsAbsolute (path: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(path) || path.startsWith('\\\\')
}

/** Where a worker puts a job's files, and the map telling Blender so. */
export interface JobLayout {
  /** The .blend in the job dir, under its own name (point caches). */
  blendPath: string
  /** For the render script: see scripts/blender/path_map.py. */
  pathMap: PathMap
  /** Each source file and its place in the job dir, once each. */
  copies: Array<{ from: string, to: string }>
}

/**
 * Lays a job out in `jobDir` so that Blender finds everything: what lived
 * in or below the .blend's folder keeps its place relative to the .blend
 * (`//` paths and `//blendcache_<name>/` need no rewriting); anything
 * else is mirrored under EXTERNAL_DIR by its absolute path, so that files
 * relative to each other (a library and its `//` textures) stay so.
 *
 * The map holds the .blend itself (the render script learns the artist's
 * folder from it) and the folder of each file, sequence or cache: the
 * whole plan goes through one argv element, which Linux caps at 128 KiB.
 */
export function planJobLayout (
  blendPath: string, deps: Dependency[], jobDir: string
): JobLayout {
  const blendDir = dirname(blendPath)
  const place = placer(blendDir, jobDir)
  const layout: JobLayout = {
    blendPath: place(blendPath),
    pathMap: { [blendPath]: place(blendPath) },
    copies: []
  }
  const targets = new Map<string, string>()
  addCopy(layout, targets, blendPath, place)
  for (const dep of deps) {
    for (const key of mapKeys(dep, blendDir)) layout.pathMap[key] = place(key)
    for (const file of dep.files) addCopy(layout, targets, file, place)
  }
  return layout
}

function placer (
  blendDir: string, jobDir: string
): (path: string) => string {
  const root = resolve(jobDir)
  return path => {
    // An artist's `C:\...` is no absolute path on a POSIX worker.
    const inside = isAbsolute(path) ? relative(blendDir, path) : '..'
    const target = isInside(inside)
      ? join(jobDir, inside)
      : join(jobDir, EXTERNAL_DIR, mirrorName(path))
    // The paths come from a peer: nothing may land outside the job dir.
    if (!resolve(target).startsWith(root + sep)) {
      throw new UnsafeJobPathError(`job file path ${JSON.stringify(path)} would leave the job folder`)
    }
    return target
  }
}

/** A manifest path that would place a file outside the job folder. */
export class UnsafeJobPathError extends Error {
  override name = 'UnsafeJobPathError'
}

function isInside (relativePath: string): boolean {
  return relativePath !== '' && !relativePath.startsWith('..') &&
    !isAbsolute(relativePath)
}

/**
 * `/home/a/x.png` → `home/a/x.png`, `C:\Users\x` → `C/Users/x`; `.`,
 * `..` and empty parts are dropped, so the name stays below the folder.
 */
function mirrorName (path: string): string {
  return path.replace(/\\/g, '/').replace(/^([A-Za-z]):/, '$1')
    .split('/').filter(part => part !== '' && part !== '.' && part !== '..').join('/')
}

/**
 * The folder of a dependency, or the cache folder it is. A folder holding
 * the .blend's own cannot stand for its files: those beside the .blend
 * keep their place instead of being mirrored, so each is mapped alone.
 */
function mapKeys (dep: Dependency, blendDir: string): string[] {
  const folder = CACHE_FOLDER_KINDS.includes(dep.kind)
    ? dep.absolute
    : folderOf(dep.absolute)
  if (!holds(folder, blendDir)) return [folder]
  const paths = new Set([dep.absolute, ...dep.files])
  return [...paths].filter(path => !holds(path, blendDir))
}

function folderOf (path: string): string {
  return isWindowsAbsolute(path) ? win32.dirname(path) : dirname(path)
}

function holds (folder: string, path: string): boolean {
  if (!isAbsolute(folder)) return false
  const inside = relative(folder, path)
  return inside === '' || isInside(inside)
}

function addCopy (
  layout: JobLayout, targets: Map<string, string>, from: string,
  place: (path: string) => string
): void {
  const to = place(from)
  const earlier = targets.get(to)
  if (earlier === from) return
  if (earlier !== undefined) throw new JobLayoutError(from, earlier, to)
  targets.set(to, from)
  layout.copies.push({ from, to })
}
