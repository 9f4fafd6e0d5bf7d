"""Build of the optional compiled time loops (rnnkit.kernels._loops); everything else is in
pyproject.toml.  Without a C compiler the build goes on without them (optional=True) and
rnnkit runs its NumPy loops.  RNNKIT_NO_EXTENSION=1 skips the extension on purpose."""
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            flags = ["/O2"]
        else:   # gcc, clang: vectorize the gate loops; no FP exceptions are relied upon
            flags = ["-O3", "-fno-trapping-math"]
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args or []) + flags
        super().build_extensions()


extensions = [] if os.environ.get("RNNKIT_NO_EXTENSION") else [
    Extension("rnnkit.kernels._loops", ["rnnkit/kernels/_loops.c"],
              depends=["rnnkit/kernels/_loops_impl.h", "rnnkit/kernels/_packed.h"], optional=True),
]

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
