"""A worker's job dir, told to Blender: the stored paths of the files a
scene needs are pointed at where the worker put them, before any frame.

The map comes in the chunk plan (render_chunk.py): absolute paths on the
artist's machine, or folders of them, to absolute paths here. Linked
libraries are reloaded from their new place; everything else has its
path rewritten. Point caches in `//blendcache_<file>/` are left alone:
Blender derives that folder from the .blend's own name and place, so a
worker keeps it beside the .blend under the same name.
"""
import os
import posixpath
import re

import bpy

from dependencies import Ref, all_refs, linked_ids, resolve
from dependency_files import one_file


class PathMap:
    """Where a worker put each file of the job, by its artist-side path.

    Keys and values are absolute; a key that is a folder maps everything
    under it (a sequence, a cache). Relative paths need no entry when the
    worker keeps them at the same place next to the file holding them;
    an entry whose value is the .blend itself names the artist's folder
    of the .blend, so that relative paths can be mapped too.
    """

    def __init__(self, entries):
        pairs = [(k, v) for k, v in (entries or {}).items()
                 if isinstance(k, str) and isinstance(v, str)
                 and comparable(k) is not None and os.path.isabs(v)]
        self.entries = {comparable(k): os.path.normpath(v) for k, v in pairs}
        self.keys = sorted(self.entries, key=len, reverse=True)
        # Worker path of the .blend or a library → its artist-side path.
        blend = os.path.normpath(bpy.data.filepath)
        self.origins = {blend: portable(k) for k, v in pairs
                        if os.path.normpath(v) == blend}

    def lookup(self, path):
        key = comparable(path)
        if key is None:
            return None
        if key in self.entries:
            return self.entries[key]
        for prefix in self.keys:
            folder = prefix.rstrip("/")
            if key.startswith(folder + "/"):
                rest = portable(path).split("/")[folder.count("/") + 1:]
                return os.path.join(self.entries[prefix], *rest)
        return None

    def origin_folder(self, holder_path):
        here = os.path.normpath(holder_path)
        return posixpath.dirname(self.origins.get(here, here))

    def target(self, ref, holder_path=None):
        """The worker path for `ref`, when the map moves it elsewhere."""
        for path in self.artist_paths(ref, holder_path):
            found = self.lookup(path)
            if found is not None:
                return None if found == ref.absolute else found
        return None

    def artist_paths(self, ref, holder_path):
        yield ref.absolute
        if ref.stored.startswith("//"):
            if holder_path is None:
                holder_path = resolve(ref.library.filepath) \
                    if ref.library else bpy.data.filepath
            folder = self.origin_folder(holder_path)
            inside = ref.stored[2:].replace("\\", "/")
            yield posixpath.normpath(posixpath.join(folder, inside))


# `C:\...`, `C:/...` or `\\server\share`: written on Windows, where an
# artist may well have made the file.
WINDOWS_PATH = re.compile(r"[A-Za-z]:[\\/]|\\\\")


def portable(path):
    """`C:\\Users\\x.png` → `C:/Users/x.png`; POSIX paths normalized."""
    if WINDOWS_PATH.match(path):
        return posixpath.normpath(path.replace("\\", "/"))
    return os.path.normpath(path)


def comparable(path):
    """An artist-side path as the map compares it, or None if relative.
    Windows paths compare without case, as Windows opens them."""
    if WINDOWS_PATH.match(path):
        return portable(path).lower()
    return os.path.normpath(path) if os.path.isabs(path) else None


# Each library may have to be reloaded again when a reload of the library
# above it replaced its record; this bounds the loop all the same.
RELOADS_PER_LIBRARY = 3


def relocate_libraries(path_map):
    """Points each linked library at the worker's copy and reloads it.

    Reloading a library reads the libraries it links from the paths
    stored in it, which replaces their records here. So libraries used
    directly go first, and the list is looked at again after each reload
    until none is left to move.
    """
    for _ in range(RELOADS_PER_LIBRARY * (len(bpy.data.libraries) + 1)):
        move = next(library_moves(path_map), None)
        if move is None:
            return
        lib, origin, target = move
        lib.filepath = target
        lib.reload()
        path_map.origins[target] = origin
        # For the chunk's log: a reload prints nothing of its own.
        print(f'blendnet: library "{origin}" reloaded from "{target}"',
              flush=True)


def library_moves(path_map):
    for lib in sorted(bpy.data.libraries, key=indirect):
        here = resolve(lib.filepath)
        for origin in library_origins(lib, path_map):
            target = path_map.lookup(origin)
            if target is not None and target != here \
                    and os.path.isfile(target):
                yield lib, origin, target
                break


def indirect(lib):
    # Sorts the libraries the file links from itself first.
    return all(i.is_library_indirect for i in linked_ids(lib))


def library_origins(lib, path_map):
    ref = Ref("library", lib.filepath, None, [], one_file)
    yield from path_map.artist_paths(ref, bpy.data.filepath)
    if lib.parent is not None:
        # Stored relative to the library above it: Blender resolved it
        # against that library's new place (fix_relpaths_library).
        parent = resolve(lib.parent.filepath)
        inside = os.path.relpath(ref.absolute, os.path.dirname(parent))
        folder = path_map.origin_folder(parent)
        yield os.path.normpath(os.path.join(folder, inside))


def apply_path_map(entries):
    """Rewrites every stored path the job's map moves; libraries first."""
    path_map = PathMap(entries)
    relocate_libraries(path_map)
    moved = 0
    for ref in list(all_refs()):
        if ref.kind == "library" or ref.holder is None:
            continue
        target = path_map.target(ref)
        if target is not None:
            ref.rewrite(target)
            moved += 1
    if moved:
        print(f"blendnet: {moved} paths rewritten to the job's files",
              flush=True)
