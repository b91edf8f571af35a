"""What the two render scripts share, inside Blender: reading the plan,
checking the scene against it and against this Blender, and rendering
one frame under blendnet's name.

render_chunk.py renders one chunk in one Blender process;
render_server.py keeps the scene loaded and renders chunk after chunk.
Both print the same marker lines (MARKER, then JSON) for the driver:
frame-start, frame-done, chunk-done, or chunk-failed with a reason.
"""
import ctypes
import json
import sys

import bpy

import dependencies
import path_map

MARKER = "blendnet-chunk: "


class ChunkScriptError(Exception):
    """The chunk cannot be rendered as planned; the message says why."""


def c_library():
    try:
        return ctypes.CDLL(None)
    except (OSError, TypeError):  # Windows has no such handle
        return None


LIBC = c_library()


def emit(event, **fields):
    say(MARKER + json.dumps({"event": event, **fields}))


def say(line):
    # Blender prints through C's stdio, which can hold lines back when
    # stdout is a pipe; without a flush they would reach the driver after
    # the line that follows them (a warm session's start-up, "Saved:").
    if LIBC is not None:
        LIBC.fflush(None)
    print(line, flush=True)


def read_plan(standby_allowed=False):
    argv = sys.argv
    if "--" not in argv or argv.index("--") + 1 >= len(argv):
        raise ChunkScriptError("no chunk plan after '--'")
    plan = json.loads(argv[argv.index("--") + 1])
    if not (standby_allowed and plan.get("standby") is True):
        check_frames(plan.get("frames"))
    return plan


def check_frames(frames):
    if not frames or not all(type(f) is int for f in frames):
        raise ChunkScriptError("the plan holds no list of whole frames")


def scene_asked_for(name):
    # `-S` with an unknown name only prints "Can't find scene" and leaves
    # the file's active scene in place, which would render (case B14).
    scene = bpy.context.scene
    if scene.name != name:
        raise ChunkScriptError(
            f"the file has no scene named '{name}' "
            f"(Blender fell back to '{scene.name}')")
    # The render operator finds its scene by name: the settings made here
    # must go to that one, not to a linked scene of the same name.
    if bpy.data.scenes.get(name) != scene:
        raise ChunkScriptError(
            f"the scene '{name}' being set up is not the one Blender "
            f"renders by that name (a linked scene of the same name?)")
    return scene


def apply_output_rules(render, plan):
    # A 0-byte placeholder or an old file left in the way must never be
    # taken for a rendered frame (case B26).
    render.use_overwrite = True
    render.use_placeholder = False
    render.use_file_extension = True
    if render.use_multiview:
        # Stereo writes one file per view under names blendnet does not
        # plan for; refuse clearly instead of failing on "extra files".
        raise ChunkScriptError("multi-view (stereo) output is not supported")
    if plan.get("resolutionPercentage") is not None:
        render.resolution_percentage = plan["resolutionPercentage"]


def apply_render_settings(scene, plan):
    # The job's settings override the scene's own: the worker renders
    # exactly what the job asked for, or fails saying why.
    if plan.get("engine"):
        scene.render.engine = plan["engine"]
    samples = plan.get("samples")
    if samples:
        if scene.render.engine == 'CYCLES':
            scene.cycles.samples = samples
        elif scene.render.engine.startswith('BLENDER_EEVEE'):
            scene.eevee.taa_render_samples = samples
    device = plan.get("device")
    if device == 'CPU':
        scene.cycles.device = 'CPU'
    elif device == 'GPU' or (scene.render.engine == 'CYCLES' and
                             scene.cycles.device == 'GPU'):
        # Also when the scene asks for a GPU by itself: a job whose file
        # the submitting machine could not read carries no device.
        enable_gpu(scene)


def check_denoiser(scene):
    # A Blender without the denoiser a scene uses renders it noisy, or
    # the compositor's Denoise node passes the image through: either way
    # the frame looks fine and is wrong (case B19), so fail instead.
    wanted = None
    if scene.render.engine == 'CYCLES' and scene.cycles.use_denoising:
        # A build without any denoiser reads the setting as ''.
        wanted = scene.cycles.denoiser or 'OPENIMAGEDENOISE'
    elif scene.use_nodes and scene.node_tree is not None and any(
            n.bl_idname == 'CompositorNodeDenoise' and not n.mute
            for n in scene.node_tree.nodes):
        wanted = 'OPENIMAGEDENOISE'
    if wanted is not None and wanted not in available_denoisers(scene):
        raise ChunkScriptError(
            f"the scene denoises with {wanted}, which this Blender lacks")


def available_denoisers(scene):
    import _cycles
    names = []
    if getattr(bpy.app.build_options, "openimagedenoise", False) or \
            getattr(_cycles, "with_openimagedenoise", False):
        names.append('OPENIMAGEDENOISE')
    if scene.cycles.device == 'GPU' and bpy.context.preferences.addons[
            'cycles'].preferences.compute_device_type == 'OPTIX':
        names.append('OPTIX')
    return names


def enable_gpu(scene):
    # In background mode with factory settings no compute device is set:
    # scene.cycles.device = 'GPU' alone quietly renders on the CPU.
    prefs = bpy.context.preferences.addons['cycles'].preferences
    for kind in ('OPTIX', 'CUDA', 'HIP', 'ONEAPI', 'METAL'):
        try:
            prefs.compute_device_type = kind
        except TypeError:
            continue
        devices = prefs.get_devices_for_type(kind)
        if any(d.type != 'CPU' for d in devices):
            for d in devices:
                d.use = d.type != 'CPU'
            scene.cycles.device = 'GPU'
            return
    raise ChunkScriptError("the job needs a GPU and this Blender finds none")


def check_dependencies(plan):
    entries = plan.get("pathMap")
    if entries is not None and not isinstance(entries, dict):
        raise ChunkScriptError("the plan's pathMap is not an object")
    path_map.apply_path_map(entries)
    missing = dependencies.missing_for_render()
    if missing and plan.get("allowMissing") is True:
        # The artist chose this at submit (--allow-missing).
        print(f"blendnet: rendering without missing files: "
              f"{missing_reason(missing)}", flush=True)
    elif missing:
        raise ChunkScriptError(missing_reason(missing))


def missing_reason(missing):
    # One line: the first file in full, two more by path, then a count.
    first = missing[0]
    users = ", ".join(first["users"][:3])
    reason = f'{first["kind"]} "{first["absolute"]}" is missing'
    if first["stored"] != first["absolute"]:
        reason += f' (stored as "{first["stored"]}")'
    reason += f", used by {users}"
    if len(missing) > 1:
        others = ", ".join(f'"{d["absolute"]}"' for d in missing[1:3])
        more = "" if len(missing) <= 3 else f" and {len(missing) - 3} more"
        reason += f"; also missing: {others}{more}"
    return reason


def render_frame(scene, frame):
    # write_still saves to render.filepath literally, without replacing
    # the '#'s (BLENDER-NOTES), so the frame's own path is set for it.
    pattern = scene.render.filepath
    path = scene.render.frame_path(frame=frame)
    emit("frame-start", frame=frame, path=path)
    make_current(scene, frame)
    scene.render.filepath = path
    try:
        bpy.ops.render.render(write_still=True, scene=scene.name)
    finally:
        scene.render.filepath = pattern
    emit("frame-done", frame=frame, path=path)


def make_current(scene, frame):
    """Sets the frame the render evaluates the scene at (marker cameras
    included), as `-f` does. Not frame_set(): that evaluates the whole
    scene once more for the viewport first, about 10 ms of CPU a frame
    on the demo scene, for nothing in the background."""
    # Without this preference (off in factory settings) the setter turns
    # a negative frame into 0; the check keeps any such change of
    # Blender's from passing one frame off as another.
    bpy.context.preferences.edit.use_negative_frames = True
    scene.frame_float = frame
    if (scene.frame_current, scene.frame_subframe) != (frame, 0.0):
        raise RuntimeError(f"Blender made frame {scene.frame_float} current, not {frame}")


def one_line(err):
    text = str(err).strip().splitlines()
    first = text[0] if text else type(err).__name__
    return first.removeprefix("Error: ")


def prepare_scene(plan):
    """The scene to render, checked and set up as the plan says; raises
    when it cannot be rendered as planned."""
    scene = scene_asked_for(plan["scene"])
    check_dependencies(plan)
    apply_output_rules(scene.render, plan)
    apply_render_settings(scene, plan)
    check_denoiser(scene)
    return scene
