"""The ``serverless-ml`` command.

    serverless-ml serve [--host 127.0.0.1] [--port 8080]   the local endpoint
    serverless-ml demo-model [--dir .serverless-ml/demo]  train the demo model, print its MODEL_URI

Without ``MODEL_URI``, ``serve`` trains (once) and serves the demo model.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

from core.errors import SettingsError

DEFAULT_DEMO_DIR = Path(".serverless-ml") / "demo"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="serverless-ml", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the local HTTP endpoint")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--demo-dir", type=Path, default=DEFAULT_DEMO_DIR, help="where the demo model is kept")

    demo = commands.add_parser("demo-model", help="train the demo model if needed and print its MODEL_URI")
    demo.add_argument("--dir", type=Path, default=DEFAULT_DEMO_DIR)

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        return _demo_model(args.dir)
    except SettingsError as exc:
        print(f"serverless-ml: {exc.message}", file=sys.stderr)
        return 2


def _demo_model(folder: Path) -> int:
    from core.demo import ensure_demo_model

    print(ensure_demo_model(folder).as_uri())
    return 0


def _serve(args: argparse.Namespace) -> int:
    from core import runtime
    from core.http.local_server import make_server

    default_uri = None
    if not os.environ.get("MODEL_URI", "").strip():
        from core.demo import ensure_demo_model

        default_uri = ensure_demo_model(args.demo_dir).as_uri()
    service = runtime.service(default_model_uri=default_uri)
    server = make_server(service, args.host, args.port)
    host, port = server.server_address[:2]
    # one machine-readable line first, so scripts and tests can find the port
    print(json.dumps({"listening": f"http://{host}:{port}", "model_uri": service.settings.model_uri.display}), flush=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _stop_on_sigterm(signum, frame) -> None:
    # the same clean shutdown as Ctrl-C: the listening socket is closed before exit
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
