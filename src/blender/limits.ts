/**
 * Time limits for the Blender processes blendnet starts, with their
 * reasons. Durations are in milliseconds.
 */

const SECOND = 1000

/** `blender --version` takes ~0.3 s; a slow disk or a cold cache more. */
export const VERSION_TIMEOUT_MS = 15 * SECOND

/**
 * Reading a scene's settings loads the whole .blend (~1 s for small
 * files); a large production file with packed textures takes longer.
 */
export const INSPECT_TIMEOUT_MS = 120 * SECOND

/**
 * After SIGTERM, how long Blender gets to exit before SIGKILL. Blender
 * does not trap SIGTERM, so this only matters when it is stuck in I/O.
 */
export const KILL_GRACE_MS = 5 * SECOND

/**
 * How long a chunk's Blender may print nothing before it counts as hung.
 * Rendering prints a line per sample or tile, but building the BVH of a
 * heavy scene or compiling its shaders is silent for minutes. Too short a
 * wait kills good renders; too long a wait leaves the chunk stuck with a
 * Blender that will never finish it.
 */
export const DEFAULT_HANG_TIMEOUT_MS = 5 * 60 * SECOND

/** Lines of Blender's output kept in a failure report. */
export const LOG_TAIL_LINES = 20
