"""Azure's predict function called as the Functions worker calls it: in a fresh interpreter started
in the app folder, with the sys.path a test chooses (site is not processed, so the editable install
of this checkout is invisible)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

PREDICT = """
    import json
    from pathlib import Path
    import azure.functions as func
    import function_app, core
    (predict,) = [f for f in function_app.app.get_functions() if f.get_function_name() == "predict"]

    class Context(func.Context):
        invocation_id = "4c1c4b3e-0b7e-4d5c-9d38-2f4f5d3a9a11"
        function_name = "predict"
        function_directory = thread_local_storage = trace_context = retry_context = None

    response = predict.get_user_function()(func.HttpRequest(
        method="POST", url="http://localhost:7071/predict", headers={"content-type": "application/json"},
        params={}, route_params={}, body=json.dumps({"instances": ROWS}).encode()), Context())
    print(json.dumps({"core": str(Path(core.__file__).parent.parent), "status": response.status_code,
                      "body": json.loads(response.get_body()),
                      "modules": {name: sys.modules[name].__file__ for name in REPORT if name in sys.modules}}))
"""


def run_in_app(folder: Path, paths: Sequence[str], env: dict[str, str], *, isolated: bool,
               rows: list[list[float]], report: Sequence[str] = ()) -> dict:
    """POST /predict ``rows`` to the app in ``folder``; its answer, the folder core came from, and
    the file of each module of ``report`` that got imported.

    sys.path: ``paths`` then the standard library (``isolated``), or ``paths[0]``, the standard
    library and this interpreter's site-packages, then the rest of ``paths``.
    """
    prelude = "import sys\n"
    if isolated:
        prelude += f"sys.path[:] = [*{list(paths)!r}, *[p for p in sys.path[1:] if 'site-packages' not in p]]\n"
    else:
        prelude += f"sys.path[:] = [{paths[0]!r}, *sys.path[1:], *{list(paths[1:])!r}]\n"
    prelude += f"ROWS = {rows!r}\nREPORT = {tuple(report)!r}\n"
    done = subprocess.run([sys.executable, "-S", "-c", prelude + textwrap.dedent(PREDICT)], cwd=folder,
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
