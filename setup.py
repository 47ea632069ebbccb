"""The one compiled extension, grammask._core, built from csrc/ (see pyproject.toml for the rest)."""

import hashlib
from pathlib import Path

import numpy  # noqa: F401  (build requirement; keeps the error clear if missing)
from Cython.Build import cythonize
from setuptools import Extension, setup

# The sources' digest goes into the module (grammask._core.SOURCE_HASH): the table cache's key follows the
# code that builds and reads the tables, not a version number someone has to remember to bump.
CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = sorted(p for p in CSRC.iterdir() if p.suffix in (".c", ".h", ".pyx") and p.name != "_core.c")
SOURCE_HASH = hashlib.sha256(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in SOURCES)).hexdigest()
# The core's C files, one per stage (csrc/gm_internal.h maps them); _core.c is Cython's output of _core.pyx.
C_FILES = [f"csrc/{p.name}" for p in SOURCES if p.suffix == ".c"]
# Headers hold code too (gm_feed.h's byte loop, gm_internal.h's inline helpers): an edit to one rebuilds.
HEADERS = [f"csrc/{p.name}" for p in SOURCES if p.suffix == ".h"]

core = Extension(
    "grammask._core",
    sources=["csrc/_core.pyx", *C_FILES],
    depends=HEADERS,
    include_dirs=["csrc"],
    define_macros=[("GM_SOURCE_HASH", f'"{SOURCE_HASH}"')],
    extra_compile_args=["-O3", "-std=c99", "-pthread"],
    extra_link_args=["-pthread"],
)

setup(ext_modules=cythonize([core], compiler_directives={"language_level": "3"}))
