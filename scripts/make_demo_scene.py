"""Builds blendnet's demo scene: a small animated Cycles CPU scene in which
every frame differs (a cube slides and turns, a sphere bobs), with a camera,
a sun, PNG output and no denoising (Debian's Blender has no
OpenImageDenoise). Used by the demo, the tests and the benchmarks.

    blender -b --factory-startup --python-exit-code 1 \\
        -P scripts/make_demo_scene.py -- OUT.blend \\
        [--frames 24] [--res 64x36] [--samples 4]

The file is saved uncompressed. Other scripts can import
build_demo_scene() to start from the same scene.
"""
import argparse
import math
import os
import re
import sys

import bpy


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="make_demo_scene.py")
    parser.add_argument("out", help="the .blend file to write")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--res", default="64x36", help="WIDTHxHEIGHT")
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args(argv)
    size = re.fullmatch(r"(\d+)x(\d+)", args.res)
    if size is None:
        parser.error(f"--res {args.res}: write it as WIDTHxHEIGHT, e.g. 64x36")
    args.res = (int(size[1]), int(size[2]))
    if args.frames < 1 or min(args.res) < 4 or args.samples < 1:
        parser.error("--frames and --samples must be 1 or more, --res 4x4 "
                     "or more")
    return args


def script_args():
    argv = sys.argv
    return argv[argv.index("--") + 1:] if "--" in argv else []


def material(name, rgb):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value \
        = (*rgb, 1.0)
    return mat


def add_mesh(add, name, rgb, **kw):
    add(**kw)
    obj = bpy.context.active_object
    obj.name = name
    obj.data.materials.append(material(name, rgb))
    return obj


def key_linear(obj, path, values, frames):
    # Linear keys: a Bezier ease would make neighbouring end frames alike.
    for value, frame in zip(values, frames):
        setattr(obj, path, value)
        obj.keyframe_insert(path, frame=frame)
    for curve in obj.animation_data.action.fcurves:
        for point in curve.keyframe_points:
            point.interpolation = 'LINEAR'


def add_moving_objects(scene, start, end):
    frames = (start, end)
    cube = add_mesh(bpy.ops.mesh.primitive_cube_add, "Cube", (0.8, 0.2, 0.1),
                    size=1.2, location=(-2, 0, 0.6))
    key_linear(cube, "location", [(-2, 0, 0.6), (2, 0, 0.6)], frames)
    key_linear(cube, "rotation_euler", [(0, 0, 0), (0, 0, math.pi)], frames)
    sphere = add_mesh(bpy.ops.mesh.primitive_uv_sphere_add, "Sphere",
                      (0.1, 0.4, 0.9), radius=0.5, location=(0, 1.5, 0.5))
    key_linear(sphere, "location", [(0, 1.5, 0.5), (0, 1.5, 2.0)], frames)
    add_mesh(bpy.ops.mesh.primitive_plane_add, "Ground", (0.5, 0.5, 0.5),
             size=12, location=(0, 0, 0))


def add_camera_and_light(scene):
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    cam.location = (0, -8, 3)
    cam.rotation_euler = (math.radians(75), 0, 0)
    scene.camera = cam
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", 'SUN'))
    scene.collection.objects.link(sun)
    sun.rotation_euler = (0.6, 0.2, 0.3)
    sun.data.energy = 3.0
    scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.05, 0.05, 0.08)


def set_render(scene, res, samples):
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y = res
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = 'PNG'
    scene.render.filepath = "//render/frame_####"


def build_demo_scene(start=1, end=24, res=(64, 36), samples=4):
    """Empties Blender and builds the demo scene; returns the scene.

    Keys are set at `start` and `end`. Python cannot store a negative
    frame_start (Blender 3.4 clamps it to 0); the command line's `-s` can.
    """
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    set_render(scene, res, samples)
    scene.frame_start, scene.frame_end = start, end
    add_moving_objects(scene, start, end)
    add_camera_and_light(scene)
    return scene


def save(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(path),
                                compress=False)


def main():
    args = parse_args(script_args())
    build_demo_scene(1, args.frames, args.res, args.samples)
    save(args.out)
    print("make_demo_scene: saved", os.path.abspath(args.out))


if __name__ == "__main__":
    main()
