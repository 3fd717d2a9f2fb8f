"""Build step: compile fastnn's kernels for this machine while installing.

``pip install .`` and ``pip install -e .`` run ``build_py``; after it, this
runs ``python -m fastnn._precompile`` in a child process of the interpreter
that pip installs into, with the environment pip's build isolation adds taken
out. The child therefore uses the numba, numpy and scipy that fastnn will run
with (the build environment holds only setuptools, so ``[build-system]``
lists nothing more), and numba writes the kernels' machine code next to the
sources it imports: in the source tree for an editable install, in the build
directory otherwise, from where it goes into the wheel and the installed
package. When the dependencies are not installed yet, or the child fails, the
install goes on and the first fit compiles the kernels. ``FASTNN_NO_PRECOMPILE=1``
skips the step. pip shows the step's line with ``-v``.
"""

import os
import subprocess
import sys
import time

from setuptools import setup
from setuptools.command.build_py import build_py

# Variables that pip's isolated build environment sets for its own
# interpreter; without them, the child sees the target environment.
_BUILD_ENV_VARS = ("PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONHOME", "NUMBA_CACHE_DIR")


def _child_env(path):
    env = {k: v for k, v in os.environ.items() if k not in _BUILD_ENV_VARS}
    env["PYTHONPATH"] = path
    return env


class BuildPyPrecompile(build_py):
    """``build_py``, then fastnn's kernels compiled into numba's cache."""

    def run(self):
        """Copy the sources, then precompile the copy that gets installed."""
        super().run()
        if os.environ.get("FASTNN_NO_PRECOMPILE", "") not in ("", "0"):
            return
        here = os.path.dirname(os.path.abspath(__file__))
        root = here if self.editable_mode else os.path.abspath(self.build_lib)
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


setup(cmdclass={"build_py": BuildPyPrecompile})
