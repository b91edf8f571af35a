"""Prints what blendnet needs to know about every scene of a .blend file.

blendnet (src/blender/scene-info.ts) runs it as

    blender -b --factory-startup --disable-autoexec FILE.blend
        --python-exit-code 1 --python scene_info.py --

and reads the one line of JSON printed behind MARKER. Values are read as
stored: a frame_start below 0 (possible through the command line, case
B13) is reported as it is.

Besides each scene's settings it lists the files outside the .blend that
a render reads (dependencies.py), so that they can travel with the job
and a missing one is caught before any frame renders (case B09).
"""
import json
import os
import sys

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dependencies  # noqa: E402

MARKER = "blendnet-scene-info: "


def has_camera(scene):
    # A camera bound to a timeline marker, or a sequencer-only render,
    # also render without scene.camera.
    if scene.camera is not None:
        return True
    if any(m.camera is not None for m in scene.timeline_markers):
        return True
    editor = scene.sequence_editor
    return bool(scene.render.use_sequencer and editor is not None
                and len(editor.sequences_all) > 0)


def output_size(render):
    # The size of the saved image, as Blender's BKE_render_resolution
    # computes it: the percentage first, then the border crop if any.
    width = render.resolution_x * render.resolution_percentage // 100
    height = render.resolution_y * render.resolution_percentage // 100
    if render.use_border and render.use_crop_to_border:
        # Blender truncates each edge of the region to whole pixels
        # (render_pipeline.c), not the region's width as a whole.
        width = (int(render.border_max_x * width)
                 - int(render.border_min_x * width))
        height = (int(render.border_max_y * height)
                  - int(render.border_min_y * height))
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
        # Frames per second is fps / fps_base (24000/1001 is 24 / 1.001).
        "fps": render.fps,
        "fpsBase": render.fps_base,
        "isMovie": render.is_movie_format,
        "engine": render.engine,
        "hasCamera": has_camera(scene),
        "viewLayers": [layer.name for layer in scene.view_layers
                       if layer.use],
        "device": scene.cycles.device,
        "samples": samples(scene),
        "denoising": denoiser(scene) is not None,
        "denoiser": denoiser(scene),
        "fileOutputNodes": [node.name for node in
                            used_compositor_nodes(scene, FILE_OUTPUT)],
        "usesPython": python_users(scene),
        "unbakedSimulations": unbaked_simulations(scene),
    }


FILE_OUTPUT = "CompositorNodeOutputFile"
DENOISE = "CompositorNodeDenoise"


def samples(scene):
    engine = scene.render.engine
    if engine == "CYCLES":
        return scene.cycles.samples
    if engine == "BLENDER_EEVEE":
        return scene.eevee.taa_render_samples
    # Workbench anti-aliasing: '8' samples, or 'FXAA' / 'OFF' for one.
    aa = scene.display.render_aa
    return int(aa) if aa.isdigit() else 1


def used_compositor_nodes(scene, idname):
    # The compositor runs only with use_nodes; a muted node does nothing.
    if not scene.use_nodes or scene.node_tree is None:
        return []
    return [node for node in scene.node_tree.nodes
            if node.bl_idname == idname and not node.mute]


def denoiser(scene):
    # Some builds lack OpenImageDenoise (case B19); OptiX needs a GPU.
    if scene.render.engine == "CYCLES" and scene.cycles.use_denoising:
        # A build without any denoiser reads the setting as ''.
        return scene.cycles.denoiser or "OPENIMAGEDENOISE"
    if used_compositor_nodes(scene, DENOISE):
        return "OPENIMAGEDENOISE"  # what the compositor's node runs
    return None


def python_users(scene):
    """What would need Python stored in the file, which blendnet never
    runs (--disable-autoexec): driver expressions Blender's own simple
    evaluator cannot handle, and text blocks registered as modules."""
    found = sorted(f"driver {name}: {expression}"
                   for name, expression in python_drivers(scene))
    found += [f"registered script {text.name}" for text in bpy.data.texts
              if text.use_module]
    return found


def python_drivers(scene):
    for block in scene_blocks(scene):
        animation = getattr(block, "animation_data", None)
        for curve in animation.drivers if animation else ():
            driver = curve.driver
            if driver.type == 'SCRIPTED' and not driver.is_simple_expression:
                where = f"{block.name}.{curve.data_path}[{curve.array_index}]"
                yield where, driver.expression


def unbaked_simulations(scene):
    """Simulations the scene's render steps frame by frame, with no bake
    to read: on a farm their frames depend on how the job is cut into
    chunks (docs/blender.md)."""
    found = []
    world = scene.rigidbody_world
    if world is not None and world.enabled and \
            not world.point_cache.is_baked:
        found.append("rigid body world")
    for obj in scene.objects:
        for mod in obj.modifiers:
            what = unbaked_modifier(mod) if mod.show_render else None
            if what:
                found.append(f"{what} on '{obj.name}'")
    return found


def unbaked_modifier(mod):
    if mod.type in ('CLOTH', 'SOFT_BODY'):
        baked = mod.point_cache.is_baked
        return None if baked else mod.type.lower().replace('_', ' ')
    if mod.type == 'PARTICLE_SYSTEM':
        psys = mod.particle_system
        steps = psys.settings.type == 'EMITTER' or psys.use_hair_dynamics
        return "particles" if steps and not psys.point_cache.is_baked \
            else None
    if mod.type == 'FLUID' and mod.fluid_type == 'DOMAIN':
        return None if mod.domain_settings.has_cache_baked_any else "fluid"
    if mod.type == 'DYNAMIC_PAINT' and mod.canvas_settings is not None:
        surfaces = mod.canvas_settings.canvas_surfaces
        unbaked = any(not s.point_cache.is_baked for s in surfaces
                      if s.surface_format == 'VERTEX')
        return "dynamic paint" if unbaked else None
    return None


def scene_blocks(scene):
    """The datablocks a scene's render evaluates, drivers and all."""
    blocks = {scene, scene.world, *bpy.data.node_groups}
    for obj in scene.objects:
        blocks.update((obj, obj.data))
        blocks.update(slot.material for slot in obj.material_slots)
        blocks.add(getattr(obj.data, "shape_keys", None))
    trees = {getattr(b, "node_tree", None) for b in blocks}
    return [b for b in blocks | trees if b is not None]


def main():
    info = {
        "activeScene": bpy.context.scene.name,
        # (major, minor, file subversion): the third is not a patch number.
        "fileVersion": "%d.%d" % tuple(bpy.data.version[:2]),
        "scenes": [describe(scene) for scene in bpy.data.scenes],
        "dependencies": dependencies.dependencies(),
        "packed": dependencies.packed(),
    }
    print(MARKER + json.dumps(info), flush=True)


main()
