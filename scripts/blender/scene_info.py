"""Prints what blendnet needs to know about every scene of a .blend file.

blendnet (src/blender/scene-info.ts) runs it as

    blender -b --factory-startup --disable-autoexec FILE.blend
        --python-exit-code 1 --python scene_info.py --

and reads the one line of JSON printed behind MARKER. Values are read as
stored: a frame_start below 0 (possible through the command line, case
B13) is reported as it is.
"""
import json

import bpy

MARKER = "blendnet-scene-info: "


def output_size(render):
    # The size of the saved image, as Blender's BKE_render_resolution
    # computes it: the percentage first, then the border crop if any.
    width = render.resolution_x * render.resolution_percentage // 100
    height = render.resolution_y * render.resolution_percentage // 100
    if render.use_border and render.use_crop_to_border:
        width = int(width * (render.border_max_x - render.border_min_x))
        height = int(height * (render.border_max_y - render.border_min_y))
    return width, height


def describe(scene):
    render = scene.render
    width, height = output_size(render)
    return {
        "name": scene.name,
        "frameStart": scene.frame_start,
        "frameEnd": scene.frame_end,
        "frameStep": scene.frame_step,
        "resolutionX": render.resolution_x,
        "resolutionY": render.resolution_y,
        "resolutionPercentage": render.resolution_percentage,
        "width": width,
        "height": height,
        "fileFormat": render.image_settings.file_format,
        "isMovie": render.is_movie_format,
        "engine": render.engine,
        "hasCamera": scene.camera is not None,
    }


def main():
    info = {
        "activeScene": bpy.context.scene.name,
        # (major, minor, file subversion): the third is not a patch number.
        "fileVersion": "%d.%d" % tuple(bpy.data.version[:2]),
        "scenes": [describe(scene) for scene in bpy.data.scenes],
    }
    print(MARKER + json.dumps(info), flush=True)


main()
