"""Tells blendnet what this Blender can render, by trying it.

blendnet (src/blender/probe.ts) runs it once at worker start as

    blender -b --factory-startup --disable-autoexec
        --python-exit-code 1 --python probe.py -- OUT_DIR

on Blender's default scene. Each render engine renders one 8x8 frame to
OUT_DIR/<ENGINE>.png; blendnet checks those files itself, since Blender
can report success and still write nothing usable. Before each step a
STAGE line names it, so that a crash can be blamed on it; at the end one
JSON line behind MARKER reports the build.
"""
import json
import os
import sys

import bpy

MARKER = "blendnet-probe: "
STAGE = "blendnet-probe-stage: "
WARNING = "blendnet-probe-warning: "

# The engines blendnet schedules; this Blender may lack some of them.
# Blender 4.2 to 4.5 name EEVEE 'BLENDER_EEVEE_NEXT'.
ENGINES = ("CYCLES", "BLENDER_EEVEE", "BLENDER_EEVEE_NEXT",
           "BLENDER_WORKBENCH")

# Device types Cycles can render on besides the CPU. Types this build
# lacks list no devices.
GPU_TYPES = ("CUDA", "OPTIX", "HIP", "ONEAPI", "METAL")

SIZE = 8

# EEVEE filters the world into a 512px cubemap by default: on a software
# GL that alone takes a second or two, at 64px about 0.1 s. Older and
# newer EEVEEs lack some of these settings; those are left alone.
CHEAP_EEVEE = {
    "taa_render_samples": 1,
    "gi_cubemap_resolution": "64",
    "gi_visibility_resolution": "8",
    "shadow_cube_size": "64",
    "shadow_cascade_size": "64",
}


def say(prefix, text):
    print(prefix + text, flush=True)


def tiny_scene(scene):
    """The startup scene made as cheap as it gets, for every engine."""
    render = scene.render
    render.resolution_x = render.resolution_y = SIZE
    render.resolution_percentage = 100
    render.image_settings.file_format = "PNG"
    if hasattr(scene, "cycles"):
        scene.cycles.device = "CPU"
        scene.cycles.samples = 1
        # Without OpenImageDenoise a denoised render fails (case B19).
        scene.cycles.use_denoising = False
    for name, value in CHEAP_EEVEE.items():
        if hasattr(scene.eevee, name):
            setattr(scene.eevee, name, value)


def has_engine(scene, engine):
    try:
        scene.render.engine = engine
    except TypeError:
        return False
    return True


def render(scene, engine, folder):
    """Renders one frame; returns Blender's complaint, or None."""
    say(STAGE, engine + " test render")
    scene.render.engine = engine
    scene.render.filepath = os.path.join(folder, engine + ".png")
    try:
        bpy.ops.render.render(write_still=True)
    except RuntimeError as err:
        return str(err).strip()
    return None


def gpu_devices():
    """Non-CPU devices the Cycles add-on finds, refreshed per type."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    found = {}
    for kind in GPU_TYPES:
        say(STAGE, kind + " device scan")
        try:
            devices = prefs.get_devices_for_type(kind)
        except Exception as err:
            # A broken GPU driver must not keep the CPU from rendering.
            say(WARNING, "%s device scan failed: %s" % (kind, err))
            continue
        for device in devices:
            if device.type != "CPU":
                found[device.id] = {"type": device.type, "name": device.name}
    return list(found.values())


def denoisers(devices):
    """Cycles denoisers; 3.x has no build_options flag, _cycles does."""
    import _cycles
    names = []
    if getattr(bpy.app.build_options, "openimagedenoise", False) or \
            getattr(_cycles, "with_openimagedenoise", False):
        names.append("OPENIMAGEDENOISE")
    if any(d["type"] == "OPTIX" for d in devices):
        names.append("OPTIX")
    return names


def main():
    scene = bpy.context.scene
    folder = sys.argv[sys.argv.index("--") + 1]
    tiny_scene(scene)
    engines = [e for e in ENGINES if has_engine(scene, e)]
    renders = [{"engine": e, "error": render(scene, e, folder)}
               for e in engines]

    cycles = "CYCLES" in engines
    devices = gpu_devices() if cycles else []
    report = {
        "blenderVersion": "%d.%d.%d" % bpy.app.version,
        "renders": renders,
        "denoisers": denoisers(devices) if cycles else [],
        "gpuDevices": devices,
        "ffmpeg": bool(bpy.app.build_options.codec_ffmpeg),
    }
    say(MARKER, json.dumps(report))


main()
