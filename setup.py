"""Build of the optional compiled time loops (rnnkit.kernels._loops); everything else is in
pyproject.toml.  Without a C compiler the build goes on without them (optional=True) and
rnnkit runs its NumPy loops.  RNNKIT_NO_EXTENSION=1 skips the extension on purpose;
RNNKIT_ASAN=1 builds it with AddressSanitizer (run Python with
LD_PRELOAD=$(gcc -print-file-name=libasan.so); see docs/reliability.md)."""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            flags = ["/O2"]
        else:  # gcc, clang: vectorize the gate loops (and sqrt: errno is never read); no FP
            # exceptions are relied upon
            flags = ["-O3", "-fno-trapping-math", "-fno-math-errno"]
        link = []
        if os.environ.get("RNNKIT_ASAN"):
            flags = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]
            link = ["-fsanitize=address"]
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args or []) + flags
            ext.extra_link_args = list(ext.extra_link_args or []) + link
        super().build_extensions()


extensions = (
    []
    if os.environ.get("RNNKIT_NO_EXTENSION")
    else [
        Extension(
            "rnnkit.kernels._loops",
            ["rnnkit/kernels/_loops.c"],
            depends=[
                "rnnkit/kernels/_loops_impl.h",
                "rnnkit/kernels/_packed.h",
                "rnnkit/kernels/_gates_avx512.h",
            ],
            optional=True,
        ),
    ]
)

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
