"""Renders one chunk (a list of frames) of one scene, inside Blender.

blendnet's driver (src/blender/argv.ts) runs it as

    blender -b --factory-startup --disable-autoexec FILE.blend -S SCENE
        -o CHUNK_DIR/frame_#### -F FORMAT -x 1
        --python-exit-code 1 --python render_chunk.py -- PLAN

where PLAN is JSON: {"scene": "...", "frames": [-5, -4, 1],
"resolutionPercentage": 25 (optional), "pathMap": {...} (optional)}.

pathMap tells where a worker put the files the scene needs, keyed by
their absolute paths on the artist's machine (path_map.py). Before any
frame, stored paths are rewritten to it and linked libraries reloaded
from their new place; a file the render reads that is still missing then
fails the chunk with its path, instead of rendering magenta (case B09).

Why not `-f`: a leading minus in `-f` means "counted from the end", so a
negative frame cannot be asked for (case B13). Here each frame is made
current and rendered with write_still, and the render evaluates the
scene at that frame as `-f` does, so the pixels are the same.

Prints one line per event, behind MARKER, as JSON for the driver:
frame-start, frame-done, chunk-done, or chunk-failed with a reason.
The code shared with render_server.py is in chunk_common.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chunk_common import (  # noqa: E402
    emit, one_line, prepare_scene, read_plan, render_frame)


def main():
    try:
        plan = read_plan()
        scene = prepare_scene(plan)
        for frame in plan["frames"]:
            render_frame(scene, frame)
    except Exception as err:
        emit("chunk-failed", reason=one_line(err))
        raise
    emit("chunk-done", frames=len(plan["frames"]))


main()
