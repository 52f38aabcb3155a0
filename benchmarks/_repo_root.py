"""Imported first by a benchmark run by path (`python benchmarks/<name>.py`), so that it runs as `-m` does.

Python puts the script's folder, benchmarks/, first on `sys.path`; `-m benchmarks.<name>` from the
repository root puts the root there, which is what `from benchmarks.harness import ...` needs. This
module swaps the one for the other, and puts the root first on PYTHONPATH too, so that the processes
a benchmark starts (Spark's Python workers, Horovod's ranks) import this checkout's code, as the
driver does, rather than an installed copy, from any folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = str(HERE.parent)

if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = ROOT
elif ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (ROOT, os.environ.get("PYTHONPATH"))))
