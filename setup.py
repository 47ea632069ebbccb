"""The one compiled extension, grammask._core, built from csrc/ (see pyproject.toml for the rest)."""

import numpy  # noqa: F401  (build requirement; keeps the error clear if missing)
from Cython.Build import cythonize
from setuptools import Extension, setup

core = Extension(
    "grammask._core",
    sources=["csrc/_core.pyx", "csrc/gm_core.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-O3", "-std=c99", "-pthread"],
    extra_link_args=["-pthread"],
)

setup(ext_modules=cythonize([core], compiler_directives={"language_level": "3"}))
