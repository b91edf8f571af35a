"""Renders chunk after chunk of one scene in one Blender: a warm session.

blendnet's session renderer (src/blender/session.ts) starts it with the
very command line render_chunk.py gets for a chunk, only this script in
its place:

    blender -b --factory-startup --disable-autoexec FILE.blend -S SCENE
        -o OUTBOX/CHUNK/frame_#### -F FORMAT -x 1
        --python-exit-code 1 --python render_server.py -- PLAN

It sets the scene up as render_chunk.py does (chunk_common.py), then
prints a "session" marker saying whether it stays warm, and renders the
plan's frames as the first chunk. A warm session then reads one request
per line on stdin:

    {"chunk": 7, "frames": [5, 6], "output": "OUTBOX/CHUNK/frame_####"}

renders it with the same markers, ending in chunk-done or chunk-failed
(which fails that chunk only), and waits for the next. {"quit": true} or
the end of stdin ends it.

A standby session starts before its job is known, with no file and
the plan {"standby": true}: it prints "blendnet: standby Blender ready"
and waits for the first request, which also names what the command line
would have:

    {"open": "JOB/FILE.blend", "format": "PNG", "plan": PLAN,
     "output": "OUTBOX/CHUNK/frame_####"}

It opens the file as `FILE.blend` on the command line does, and goes on
as above. Only a file whose active scene is the plan's and already saves
in the job's format is served so: `-S` and `-F` have no exact equivalent
in Python (setting the format from Python also changes the colour depth).
For any other it prints a "standby-declined" marker with the reason and
quits, and the worker starts a Blender the usual way.

A session stays warm only when no frame can depend on the frames
rendered before it in the same Blender: a simulation steps from the
previous frame and caches what it computed, so the same frame would
differ from a fresh Blender's. Such a scene renders its first chunk and
quits, exactly like render_chunk.py.
"""
import json
import os
import sys
import traceback

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chunk_common import (  # noqa: E402
    check_frames, emit, one_line, prepare_scene, read_plan, render_frame, say)

# Modifiers that step from the previous frame (their point cache).
SIMULATIONS = {'CLOTH': 'cloth', 'SOFT_BODY': 'soft body',
               'FLUID': 'fluid', 'DYNAMIC_PAINT': 'dynamic paint'}


class Loaded:
    """What rendering changes in the scene, as it was when set up: put
    back after each chunk, so that the next starts where a fresh Blender
    would."""

    def __init__(self, scene):
        self.scene = scene
        self.filepath = scene.render.filepath
        self.frame = scene.frame_current
        # Markers switch scene.camera as frames are set; with their
        # cameras hidden from render (animatable) no switch happens, and
        # the camera of an earlier chunk would stay.
        self.camera = scene.camera

    def restore(self):
        scene = self.scene
        scene.render.filepath = self.filepath
        scene.frame_current = self.frame
        if scene.camera != self.camera:
            scene.camera = self.camera


def carried_state():
    """Why a frame of this file can depend on the frames evaluated before
    it in the same Blender, or None. Every scene and object of the file
    counts, used or not: a false alarm costs only the session's warmth."""
    for scene in bpy.data.scenes:
        if scene.rigidbody_world is not None:
            return f"scene '{scene.name}' has a rigid body world"
    for obj in bpy.data.objects:
        for mod in obj.modifiers:
            what = SIMULATIONS.get(mod.type) or simulating_modifier(mod)
            if what:
                return f"{what} on '{obj.name}'"
    return None


def simulating_modifier(mod):
    if mod.type == 'PARTICLE_SYSTEM':
        psys = mod.particle_system
        if psys.settings.type == 'EMITTER' or psys.use_hair_dynamics:
            return "a particle system"
    if mod.type == 'NODES' and mod.node_group is not None and \
            has_simulation_zone(mod.node_group, set()):
        return "a geometry nodes simulation"
    return None


def has_simulation_zone(tree, seen):
    # Blender 3.6 and later; node groups can nest.
    seen.add(tree.name)
    for node in tree.nodes:
        if node.bl_idname == 'GeometryNodeSimulationOutput':
            return True
        inner = getattr(node, "node_tree", None)
        if inner is not None and inner.name not in seen and \
                has_simulation_zone(inner, seen):
            return True
    return False


def render_chunk(scene, frames, chunk=None):
    """Renders the frames; a failure is reported and fails only them."""
    ids = {} if chunk is None else {"chunk": chunk}
    try:
        check_frames(frames)
        for frame in frames:
            render_frame(scene, frame)
    except Exception as err:
        traceback.print_exc()
        emit("chunk-failed", reason=one_line(err), **ids)
        return False
    emit("chunk-done", frames=len(frames), **ids)
    return True


def serve(scene, loaded):
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            return
        scene.render.filepath = request["output"]
        try:
            render_chunk(scene, request["frames"], request["chunk"])
        finally:
            loaded.restore()


def standby():
    """Waits for the first chunk, loads its file; returns the plan."""
    say("blendnet: standby Blender ready")
    line = sys.stdin.readline()
    request = json.loads(line) if line.strip() else {"quit": True}
    if request.get("quit"):
        sys.exit(0)
    plan = request["plan"]
    try:
        bpy.ops.wm.open_mainfile(filepath=request["open"], load_ui=True,
                                 use_scripts=False)
    except Exception as err:
        decline(f"it could not open the file ({one_line(err)})")
    scene = bpy.context.scene
    # By name as `-S` and the render operator find it: a linked scene of
    # the same name as a local one is not the one they would use.
    if bpy.data.scenes.get(plan["scene"]) != scene:
        decline(f"the file's active scene '{scene.name}' is linked from "
                f"another file, and '-S' picks the local one of that name"
                if scene.name == plan["scene"] else
                f"the job's scene '{plan['scene']}' is not the file's "
                f"active scene '{scene.name}'")
    saved_as = scene.render.image_settings.file_format
    if saved_as != request["format"]:
        decline(f"the scene saves {saved_as}, the job {request['format']}")
    scene.render.filepath = request["output"]  # as -o does
    return plan


def decline(reason):
    emit("standby-declined", reason=reason)
    sys.exit(0)


def main():
    # Python's errors and Blender's own go to stderr: on stdout too, they
    # reach the driver in order, before the marker that ends their chunk.
    os.dup2(1, 2)
    try:
        plan = read_plan(standby_allowed=True)
        if plan.get("standby") is True:
            plan = standby()
            check_frames(plan.get("frames"))
        scene = prepare_scene(plan)
    except Exception as err:
        emit("chunk-failed", reason=one_line(err))
        raise
    loaded = Loaded(scene)
    held = carried_state()
    emit("session", warm=held is None, reason=held)

    rendered = render_chunk(scene, plan["frames"])
    loaded.restore()
    if held is None:
        serve(scene, loaded)
    elif not rendered:
        sys.exit(1)  # as render_chunk.py would


main()
