"""Build step: compile fastnn's kernels for this machine while building.

``pip install .``, ``pip install -e .`` and ``pip wheel .`` run ``build_py``;
after it, this runs ``python -m fastnn._precompile`` in a child process of
the build's own interpreter and environment. ``[build-system]`` requires the
same numba, numpy, scipy and threadpoolctl as ``[project]`` does (all that
the kernels import), so pip's isolated build environment holds them before
fastnn is built, resolved as pip then resolves them for the environment it
installs into. numba writes
the kernels' machine code next to the sources it imports: in the source tree
for an editable install, in the build directory otherwise, from where it goes
into the wheel and the installed package. numba keys each entry on its own
version, the Python version, the CPU and a hash of the source, so the code
loads wherever those match, and otherwise the first fit compiles what it
needs and says so. A wheel holding that machine code is tagged for this
interpreter and platform (``cp311-cp311-linux_x86_64``, say), not
``py3-none-any``.

The build first deletes any cache files left in the package from an earlier
build: numba checks an entry against the source of its own function only,
and an entry point holds the machine code of every kernel it calls, so an
entry compiled before an edit elsewhere would be stale. When the compile
fails, the build goes on without it. ``FASTNN_NO_PRECOMPILE=1`` skips the
step (and builds a pure-Python wheel). pip shows the step's lines with
``-v``.
"""

import os
import subprocess
import sys
import time

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py


def _remove_cache_files(package):
    """Delete numba's index and data files under ``package``."""
    for dirpath, _, filenames in os.walk(package):
        for name in filenames:
            if name.endswith((".nbi", ".nbc")):
                os.remove(os.path.join(dirpath, name))


def _child_env(path):
    """The build's environment, with ``path`` first on the module path.

    ``NUMBA_CACHE_DIR`` is dropped so that numba writes next to the sources.
    """
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (path, env.get("PYTHONPATH")) if p)
    return env


class BuildPyPrecompile(build_py):
    """``build_py``, then fastnn's kernels compiled into numba's cache."""

    def run(self):
        """Copy the sources, then precompile the copy that gets installed."""
        super().run()
        self.distribution.fastnn_compiled_core = False
        if os.environ.get("FASTNN_NO_PRECOMPILE", "") not in ("", "0"):
            return
        here = os.path.dirname(os.path.abspath(__file__))
        root = here if self.editable_mode else os.path.abspath(self.build_lib)
        _remove_cache_files(os.path.join(root, "fastnn"))
        print("fastnn: compiling kernels for this machine ...", file=sys.stderr)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "fastnn._precompile"],
            cwd=root,
            env=_child_env(root),
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if proc.returncode == 0:
            self.distribution.fastnn_compiled_core = True
            print(
                f"fastnn: compiled kernels for this machine in {seconds:.1f} s "
                f"(into {os.path.join(root, 'fastnn')})",
                file=sys.stderr,
            )
            return
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(
            f"fastnn: kernels not precompiled ({last}); the first fit compiles "
            "them, or run `python -m fastnn --precompile` after installing",
            file=sys.stderr,
        )


class BdistWheelForThisMachine(bdist_wheel):
    """A wheel tagged for this interpreter and platform when it holds machine code."""

    def get_tag(self):
        """``py3-none-any`` without the compiled core, else e.g. cp311-cp311-linux."""
        if not getattr(self.distribution, "fastnn_compiled_core", False):
            return super().get_tag()
        pure, self.root_is_pure = self.root_is_pure, False
        try:
            return super().get_tag()
        finally:
            self.root_is_pure = pure


setup(cmdclass={"build_py": BuildPyPrecompile, "bdist_wheel": BdistWheelForThisMachine})
