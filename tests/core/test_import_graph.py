"""Core's imports follow its layers (bench/import_graph.py): nothing imports upward, nothing loops."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "import_graph.py"


def test_no_import_in_core_runs_against_its_layers_or_in_a_loop():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quiet", "--no-results"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("0 against the layers, 0 loops"), result.stdout


def test_the_check_sees_an_upward_import_a_lazy_one_and_a_loop(tmp_path):
    graph = runpy.run_path(str(SCRIPT))  # not as __main__: only the functions
    Edge = graph["Edge"]
    module = tmp_path / "settings.py"
    module.write_text(
        "from core.errors import SettingsError\n"
        "def late():\n"
        "    from core.batch.engine import run_batch\n"
    )
    modules = {"core.settings": module, "core.batch.engine": module}
    edges = graph["edges_of"]("core.settings", module, modules)
    assert [(e.target, e.kind) for e in edges] == [("core.errors", "top"), ("core.batch.engine", "lazy")]
    assert graph["wrong_way"](edges[0]) is None
    assert graph["wrong_way"](edges[1]) == "upward: settings -> batch"
    assert graph["wrong_way"](Edge("core.batch.engine", "core.http.service", "top", 1)) == "upward: batch -> http"
    # importing core.model.formats runs core/model/__init__.py, which imports the loader
    loop = [Edge("core.settings", "core.model.formats", "top", 1), Edge("core.model", "core.model.loading", "top", 1),
            Edge("core.model.loading", "core.settings", "typing", 1)]
    assert graph["cycles"](loop) == [["core.model", "core.model.loading", "core.settings"]]
