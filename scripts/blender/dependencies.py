"""The files outside a .blend that rendering it reads, found from inside
Blender.

scene_info.py lists them at submit; render_chunk.py, once path_map.py has
pointed them at the worker's copies, refuses to render while one is still
missing: Blender renders a missing texture magenta and says nothing
(case B09).

Every path stored in the file is a `Ref`: its kind, the path as written,
the library it is relative to, the datablock holding it and how to
rewrite it. Relative (`//`) paths resolve against the file that holds
them: the .blend, or the library a linked datablock comes from.
"""
import os

import bpy

from dependency_files import (
    cache_prefix, folder_files, one_file, point_cache_files, sequence_files,
    tile_files)

# Blender itself never packs these: a movie is always read from disk.
PACKED_KINDS_READ_ANYWAY = ("movie",)


class Ref:
    """One external path stored in the open file.

    An optional one (an unbaked simulation cache) counts only while it
    has files: Blender simulates what it does not find. It is rewritten
    all the same, since on a worker its old place is empty.
    """

    def __init__(self, kind, stored, holder, user, expand, library=None,
                 optional=False):
        self.kind = kind
        self.stored = stored
        self.holder = holder  # (object, attribute) to rewrite, or None
        self.user = user
        self.expand = expand
        self.library = library
        self.optional = optional

    @property
    def absolute(self):
        return resolve(self.stored, self.library)

    def files(self):
        return self.expand(self.absolute)

    def rewrite(self, path):
        target, attribute = self.holder
        setattr(target, attribute, path)


def resolve(stored, library=None):
    """The path as Blender opens it: `//` from the holding file's folder.

    Library paths are relative to the .blend itself once loaded: Blender
    rewrites those of indirect libraries (readfile.c,
    fix_relpaths_library), so `bpy.path.abspath` needs no parent chain.
    """
    if stored.startswith("//") and os.sep == "/":
        # Made on Windows: Blender turns the separators (BLI_path_abs).
        stored = stored.replace("\\", "/")
    path = bpy.path.abspath(stored, library=library)
    return os.path.normpath(path) if os.path.isabs(path) else path


# ---- where each kind of datablock keeps its paths ---------------------

def image_refs(users):
    kinds = {'FILE': ("image", one_file),
             'SEQUENCE': ("image-sequence", sequence_files),
             'TILED': ("udim", tile_files),
             'MOVIE': ("movie", one_file)}
    for image in bpy.data.images:
        kind, expand = kinds.get(image.source, (None, None))
        if kind is None or not image.filepath or is_packed(image, kind):
            continue
        yield Ref(kind, image.filepath, (image, "filepath"),
                  users(image), expand, image.library)


def is_packed(datablock, kind="file"):
    if kind in PACKED_KINDS_READ_ANYWAY:
        return False
    return getattr(datablock, "packed_file", None) is not None


def clip_refs(users):
    for clip in bpy.data.movieclips:
        expand = sequence_files if clip.source == 'SEQUENCE' else one_file
        yield Ref("movie", clip.filepath, (clip, "filepath"),
                  users(clip), expand, clip.library)


def library_refs(_users):
    for lib in bpy.data.libraries:
        if lib.packed_file is None:
            yield Ref("library", lib.filepath, (lib, "filepath"),
                      linked_from(lib), one_file)


def linked_from(lib):
    """The datablocks the file takes from `lib`, or the library above."""
    names = sorted({i.name for i in linked_ids(lib)})
    if not names and lib.parent is not None:
        names = [lib.parent.name]
    return names


def linked_ids(lib):
    for collection in (bpy.data.objects, bpy.data.collections,
                       bpy.data.materials, bpy.data.node_groups,
                       bpy.data.meshes, bpy.data.worlds, bpy.data.scenes):
        yield from (i for i in collection if i.library == lib)


def simple_refs(collection, kind, users, sequence_attr=None):
    # Fonts, sounds, volumes, Alembic/USD caches: one path each, read
    # as a numbered sequence when the datablock says so.
    for block in collection:
        if is_packed(block) or block.filepath in ("", "<builtin>"):
            continue
        many = sequence_attr and getattr(block, sequence_attr, False)
        expand = sequence_files if many else one_file
        yield Ref(kind, block.filepath, (block, "filepath"),
                  users(block), expand, block.library)


def cache_layer_refs(users):
    # Alembic override layers (3.3+), read on top of the main file.
    for cache in bpy.data.cache_files:
        for layer in getattr(cache, "layers", ()):
            yield Ref("cache-file", layer.filepath, (layer, "filepath"),
                      users(cache), one_file, cache.library)


def object_refs(_users):
    # Simulation caches and mesh caches belong to the object's modifiers.
    for obj in bpy.data.objects:
        yield from point_cache_refs(obj)
        for mod in obj.modifiers:
            yield from modifier_refs(obj, mod)


def modifier_refs(obj, mod):
    if mod.type == 'FLUID' and mod.fluid_type == 'DOMAIN':
        # A replay cache is never "baked", yet read back where it holds
        # the frame (fluid.c); a baked one is read and never simulated.
        settings = mod.domain_settings
        yield Ref("fluid-cache", settings.cache_directory,
                  (settings, "cache_directory"), [obj.name], folder_files,
                  obj.library, optional=not settings.has_cache_baked_any)
    elif mod.type == 'MESH_CACHE':
        yield Ref("mesh-cache", mod.filepath, (mod, "filepath"),
                  [obj.name], one_file, obj.library)
    elif mod.type == 'OCEAN' and mod.is_cached:
        yield Ref("ocean-cache", mod.filepath, (mod, "filepath"),
                  [obj.name], folder_files, obj.library)


def object_caches(obj):
    for system in obj.particle_systems:
        yield system.point_cache
    for mod in obj.modifiers:
        if getattr(mod, "point_cache", None) is not None:
            yield mod.point_cache  # cloth, soft body
        if mod.type == 'DYNAMIC_PAINT' and mod.canvas_settings is not None:
            for surface in mod.canvas_settings.canvas_surfaces:
                yield surface.point_cache


def point_cache_refs(obj):
    """Point caches on disk: frames Blender reads back at render.

    A cache kept in the default `//blendcache_<file>/` cannot be
    rewritten (Blender derives that folder from the file's own name), so
    a worker keeps it beside the .blend under its first name.
    """
    for cache in object_caches(obj):
        if cache.use_disk_cache:
            yield point_cache_ref(obj, cache)


def point_cache_ref(obj, cache):
    library = obj.library if cache.use_library_path else None
    expand = point_cache_files(cache_prefix(obj, cache), cache)
    optional = not cache.is_baked
    if cache.use_external:
        return Ref("point-cache", cache.filepath, (cache, "filepath"),
                   [obj.name], expand, library, optional)
    holder = obj.library.filepath if library else bpy.data.filepath
    stem = os.path.splitext(os.path.basename(holder))[0]
    return Ref("point-cache", f"//blendcache_{stem}/", None, [obj.name],
               expand, library, optional)


class StripRef(Ref):
    """An image strip of the sequencer: a folder and its file names."""

    def __init__(self, strip):
        first = strip.elements[0].filename if len(strip.elements) else ""
        names = [e.filename for e in strip.elements]
        super().__init__(
            "image" if len(names) == 1 else "image-sequence",
            os.path.join(strip.directory, first), (strip, "directory"),
            [strip.name],
            lambda path: [os.path.join(os.path.dirname(path), n)
                          for n in names])
        self.strip = strip

    def rewrite(self, path):
        self.strip.directory = os.path.dirname(path) + os.sep


def strip_refs(_users):
    # The sequencer reads its strips' files whenever it is used to render.
    for scene in bpy.data.scenes:
        if scene.sequence_editor is None:
            continue
        for strip in scene.sequence_editor.sequences_all:
            if strip.type == 'IMAGE':
                yield StripRef(strip)
            elif strip.type == 'MOVIE':
                yield Ref("movie", strip.filepath, (strip, "filepath"),
                          [strip.name], one_file)


NODE_KINDS = {'ShaderNodeTexIES': "ies", 'ShaderNodeScript': "osl-script"}


def node_refs(_users):
    # IES light profiles and OSL scripts kept in files beside the scene.
    for owner, tree in node_trees():
        for node in tree.nodes:
            kind = NODE_KINDS.get(node.bl_idname)
            if kind is not None and node.mode == 'EXTERNAL':
                yield Ref(kind, node.filepath, (node, "filepath"),
                          [owner.name], one_file, owner.library)


def node_trees():
    for collection in (bpy.data.materials, bpy.data.worlds, bpy.data.lights):
        for owner in collection:
            if owner.node_tree is not None:
                yield owner, owner.node_tree
    for group in bpy.data.node_groups:
        yield group, group


# ---- the whole list ----------------------------------------------------

def all_refs():
    users = user_finder()
    data = bpy.data
    yield from image_refs(users)
    yield from clip_refs(users)
    yield from library_refs(users)
    yield from object_refs(users)
    yield from simple_refs(data.cache_files, "cache-file", users,
                           "is_sequence")
    yield from cache_layer_refs(users)
    yield from simple_refs(data.volumes, "volume", users, "is_sequence")
    yield from simple_refs(data.fonts, "font", users)
    yield from simple_refs(data.sounds, "sound", users)
    yield from strip_refs(users)
    yield from node_refs(users)


def user_finder():
    """The names of the datablocks that use a datablock."""
    data = bpy.data
    blocks = [*data.images, *data.movieclips, *data.cache_files,
              *data.volumes, *data.fonts, *data.sounds]
    usage = bpy.data.user_map(subset=blocks)
    return lambda block: sorted(u.name for u in usage.get(block, ()))


def dependencies():
    """One entry per file or folder; datablocks sharing one are merged."""
    found = {}
    for ref in all_refs():
        if ref.optional and not ref.files():
            continue
        key = (ref.kind, ref.absolute)
        if key not in found:
            found[key] = describe(ref)
        merged = set(found[key]["users"]) | set(ref.user)
        found[key]["users"] = sorted(merged)
    return sorted(found.values(), key=lambda d: (d["kind"], d["absolute"]))


def describe(ref):
    files = ref.files()
    return {"kind": ref.kind, "stored": ref.stored,
            "absolute": ref.absolute,
            "exists": bool(files) and all(map(os.path.isfile, files)),
            "files": files, "users": []}


def packed():
    """Datablocks packed into the file: they travel inside it."""
    data = bpy.data
    blocks = [*data.images, *data.fonts, *data.sounds, *data.volumes,
              *data.libraries]
    return sorted(b.name for b in blocks if is_packed(b))


# Kinds an image render never reads: their absence changes no pixel.
NOT_RENDERED = ("sound",)


def missing_for_render():
    """Dependencies still missing that a render would read (case B09)."""
    return [d for d in dependencies()
            if not d["exists"] and d["users"]
            and d["kind"] not in NOT_RENDERED]
