"""The ``serverless-ml`` command.

    serverless-ml serve [--host 127.0.0.1] [--port 8080] [--provider aws|azure|gcp]
    serverless-ml demo-model [--dir .serverless-ml/demo]  train the demo model, print its MODEL_URI

Without ``MODEL_URI``, ``serve`` trains (once) and serves the demo model. Without ``--provider``
the core service answers; with it, the provider's own adapter does (see provider_servers.py).
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
    serve.add_argument(
        "--provider", choices=("aws", "azure", "gcp"),
        help="answer through this provider's adapter, as the cloud would (default: the core service)",
    )

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

    if not os.environ.get("MODEL_URI", "").strip():
        from core.demo import ensure_demo_model

        # the adapters read MODEL_URI from the environment, like the core service
        os.environ["MODEL_URI"] = ensure_demo_model(args.demo_dir).as_uri()
    if args.provider is not None:
        from serverless_ml.provider_servers import require_extra

        require_extra(args.provider)
    if args.provider == "gcp":
        from serverless_ml.provider_servers import exec_functions_framework

        runtime.service()  # a wrong setting stops here, with its message, before the exec
        exec_functions_framework(args.host, args.port or _free_port(args.host))
    respond = None
    if args.provider is not None:
        from serverless_ml.provider_servers import RESPONDERS

        respond = RESPONDERS[args.provider]()
    service = runtime.service()
    server = make_server(service, args.host, args.port, respond)
    host, port = server.server_address[:2]
    # one machine-readable line first, so scripts and tests can find the port
    print(
        json.dumps(
            {"listening": f"http://{host}:{port}", "provider": args.provider or "core",
             "model_uri": service.settings.model_uri.display}
        ),
        flush=True,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _stop_on_sigterm(signum, frame) -> None:
    # the same clean shutdown as Ctrl-C: the listening socket is closed before exit
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
