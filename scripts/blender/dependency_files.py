"""Which files one stored path stands for: a single file, every frame of
a numbered sequence or of UDIM tiles, or every file of a cache folder.
Used by dependencies.py; each function takes the path as resolved here
and returns absolute paths, sorted.
"""
import os
import re


def one_file(path):
    return [path]


def sequence_files(path):
    """Every file of the numbered sequence `path` is a frame of.

    Blender numbers a sequence by the last run of digits in the file
    name; all the frames there are listed, the used ones among them.
    """
    folder, name = os.path.split(path)
    match = re.fullmatch(r"(.*?)(\d+)(\D*)", name)
    if match is None:
        return [path]
    pattern = re.compile(
        re.escape(match[1]) + r"\d+" + re.escape(match[3]))
    return matching_files(folder, pattern) or [path]


def tile_files(path):
    # UDIM tiles: `<UDIM>` stands for 1001, 1002...; `<UVTILE>` for u1_v1.
    folder, name = os.path.split(path)
    if "<UDIM>" not in name and "<UVTILE>" not in name:
        return sequence_files(path)
    pattern = re.escape(name).replace(re.escape("<UDIM>"), r"\d{4}")
    pattern = pattern.replace(re.escape("<UVTILE>"), r"u\d+_v\d+")
    return matching_files(folder, re.compile(pattern)) or [path]


def matching_files(folder, pattern):
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in sorted(names)
            if pattern.fullmatch(n)]


def folder_files(path):
    """Every file under a cache folder (fluid caches hold subfolders)."""
    found = []
    for root, _dirs, names in os.walk(path):
        found.extend(os.path.join(root, n) for n in names)
    return sorted(found)


def cache_prefix(obj, cache):
    # pointcache.c, ptcache_filename(): the cache's name, or else the
    # object's name in hex; a byte above 127 prints as a sign-extended
    # char (FFFFFFC3) on the x86 builds.
    if cache.name or cache.use_external:
        return cache.name
    return "".join("%02X" % b if b < 128 else "FFFFFF%02X" % b
                   for b in obj.name.encode("utf-8"))


def point_cache_files(prefix, cache):
    index = r"_\d{2}" if cache.index < 0 else "_%02d" % cache.index
    pattern = re.compile(re.escape(prefix) + r"_\d{6}" + f"(?:{index})?"
                         + r"\.bphys")
    return lambda folder: matching_files(folder, pattern)
