/**
 * Output names. blendnet chooses every file name itself, so that the
 * coordinator, the worker and Blender all agree on it in advance:
 *
 *   frame_0001.png   frame_0250.png   frame_-0005.png   frame_12345.exr
 *
 * The frame number is zero-padded to 4 digits, with the sign in front of
 * the padding for negative frames (Blender's own `#` convention), and the
 * extension follows the image format.
 */

/** Image formats blendnet renders into; movie formats become PNG frames. */
export type ImageFormat =
  | 'PNG'
  | 'JPEG'
  | 'TIFF'
  | 'OPEN_EXR'
  | 'OPEN_EXR_MULTILAYER'

export const IMAGE_FORMATS: readonly ImageFormat[] = [
  'PNG', 'JPEG', 'TIFF', 'OPEN_EXR', 'OPEN_EXR_MULTILAYER'
]

/** The extension Blender writes for each format when `-x 1` is set. */
const EXTENSIONS: Record<ImageFormat, string> = {
  PNG: '.png',
  JPEG: '.jpg',
  TIFF: '.tif',
  OPEN_EXR: '.exr',
  OPEN_EXR_MULTILAYER: '.exr'
}

export const FRAME_PREFIX = 'frame_'

/** The `-o` pattern handed to Blender: one `#` group of four. */
export const BLENDER_OUTPUT_PATTERN = `${FRAME_PREFIX}####`

export function isImageFormat (value: string): value is ImageFormat {
  return (IMAGE_FORMATS as readonly string[]).includes(value)
}

export function extensionOf (format: ImageFormat): string {
  return EXTENSIONS[format]
}

/** `7` → `0007`, `-5` → `-0005`, `12345` → `12345`. */
export function padFrame (frame: number): string {
  const digits = String(Math.abs(frame)).padStart(4, '0')
  return frame < 0 ? `-${digits}` : digits
}

/** The file name of one frame, the same in a chunk dir and in `--output`. */
export function frameFileName (frame: number, format: ImageFormat): string {
  return `${FRAME_PREFIX}${padFrame(frame)}${extensionOf(format)}`
}
