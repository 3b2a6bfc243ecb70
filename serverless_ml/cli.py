"""The ``serverless-ml`` command.

    serverless-ml serve [--host 127.0.0.1] [--port 8080] [--provider aws|azure|gcp]
    serverless-ml demo-model [--dir .serverless-ml/demo]  train the demo model, print its MODEL_URI
    serverless-ml batch INPUT [OUTPUT] [--model URI] [--candidate URI] [--workers N]
                                                          predict a .csv/.jsonl/.json(.gz) file or object
                                                          (with a candidate: shadow it, write its outputs too)
    serverless-ml export MODEL --to onnx|skops            convert a model, write it with its manifest
    serverless-ml package --provider aws|azure|gcp        build the deployable bundle of one provider
    serverless-ml compare --primary URI --candidate URI INPUT   how far two models agree on a batch file

Without ``MODEL_URI``, ``serve`` trains (once) and serves the demo model. Without ``--provider``
the core service answers; with it, the provider's own adapter does (see provider_servers.py).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import SettingsError

DEFAULT_DEMO_DIR = Path(".serverless-ml") / "demo"


def main(argv: Sequence[str] | None = None) -> int:
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

    batch = commands.add_parser(
        "batch", help="predict every row of a .csv, .jsonl or .json file (optionally .gz), as a storage trigger would",
        description="Exit status: 0 every row predicted; 1 outputs written but some lines failed "
        "(see the errors file); 2 nothing written (bad argument or setting, input skipped, model or storage unavailable). "
        "A shadowed candidate never changes it: its outcome is a line on stderr and its summary file.",
    )
    batch.add_argument("input", metavar="INPUT", help="a local path or a URI: file://, s3://, gs://, az://")
    batch.add_argument(
        "output", metavar="OUTPUT", nargs="?",
        help="folder or prefix for the outputs (default: BATCH_OUTPUT_URI, else predictions/ beside the input)",
    )
    batch.add_argument("--model", help="the model's URI or local path (default: MODEL_URI, else the demo model)")
    batch.add_argument(
        "--candidate", help="a candidate model's URI or local path to shadow: its predictions and a comparison summary "
        "are written beside the outputs (default: CANDIDATE_MODEL_URI with CANDIDATE_MODE=shadow)",
    )
    batch.add_argument("--demo-dir", type=Path, default=DEFAULT_DEMO_DIR, help="where the demo model is kept")
    batch.add_argument(
        "--workers", type=_workers, default=1, metavar="N",
        help="split a .csv or .jsonl file into row-aligned parts, predict them in N processes and merge the outputs "
        "(the same bytes as one process writes); default 1",
    )

    # Each of these modules defines its own arguments and imports what it needs only when it runs.
    from serverless_ml import compare_command, export_command, package_command

    export_command.add_arguments(commands.add_parser(
        "export", help="convert a model to ONNX or skops and write it with its manifest"))
    package_command.add_arguments(commands.add_parser(
        "package", help="build the deployable bundle (zip or folder) of one provider"))
    compare_command.add_arguments(commands.add_parser(
        "compare", help="predict a batch file with two models and report how far they agree"))

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "export":
            return export_command.run(args)
        if args.command == "package":
            return package_command.run(args)
        if args.command == "compare":
            return compare_command.run(args)
        return _demo_model(args.dir)
    except SettingsError as exc:
        print(f"serverless-ml: {exc.message}", file=sys.stderr)
        return 2


def _demo_model(folder: Path) -> int:
    from core.demo import ensure_demo_model

    print(ensure_demo_model(folder).as_uri())
    return 0


def _batch(args: argparse.Namespace) -> int:
    from core.batch.engine import run_batch
    from core.errors import ModelUnavailable, PredictionFailed, StorageError
    from core.logs import configure
    from core.model import ModelHolder
    from core.settings import Settings
    from core.storage.locations import parse_output_prefix

    env = dict(os.environ)
    if args.model:
        env["MODEL_URI"] = _as_uri(args.model)
    elif not env.get("MODEL_URI", "").strip():
        from core.demo import ensure_demo_model

        env["MODEL_URI"] = ensure_demo_model(args.demo_dir).as_uri()
    if args.candidate:
        env.update(CANDIDATE_MODEL_URI=_as_uri(args.candidate), CANDIDATE_MODE="shadow")
    settings = Settings.from_env(env)
    output_prefix = None
    if args.output:
        try:
            output_prefix = parse_output_prefix(_as_uri(args.output))
        except ValueError as exc:
            print(f"serverless-ml: OUTPUT {args.output!r} is not a usable location: {exc}", file=sys.stderr)
            return 2
    configure(settings.log_level)
    try:
        source = _as_uri(args.input)
        from core.storage import parse_uri

        input_uri = parse_uri(source)
    except ValueError as exc:
        print(f"serverless-ml: INPUT {args.input!r} is not a usable location: {exc}", file=sys.stderr)
        return 2
    size = os.path.getsize(input_uri.key) if input_uri.scheme == "file" and os.path.isfile(input_uri.key) else None
    bar = _progress_bar(size)
    fanned: dict | None = None
    try:
        if args.workers > 1:
            from core.batch.workers import run_with_workers

            result, fanned = run_with_workers(
                input_uri, settings, args.workers, model_holder=ModelHolder(settings), output_prefix=output_prefix,
                progress=bar.update if bar else None)
        else:
            result = run_batch(
                input_uri, ModelHolder(settings), settings, output_prefix=output_prefix,
                progress=bar.update if bar else None)
    except (ModelUnavailable, StorageError, PredictionFailed) as exc:
        print(f"serverless-ml: {exc.message}", file=sys.stderr)
        return 2
    finally:
        if bar:
            bar.close()
    print(json.dumps({**result.as_dict(), **({"fanout": fanned} if fanned is not None else {})}), flush=True)
    if result.shadow is not None:
        print(f"serverless-ml: {_shadow_line(result.shadow, result.summary_uri)}", file=sys.stderr)
    if result.skipped:
        print(f"serverless-ml: skipped: {result.skipped}", file=sys.stderr)
        return 2
    if result.input_error and not result.rows_read:
        # nothing was read as a row (a refused header, a file that is not the format its name says)
        print(f"serverless-ml: the file was refused: {result.input_error}; see {result.errors_uri}", file=sys.stderr)
        return 1
    if result.input_error:
        print(
            f"serverless-ml: {result.rows_failed} line(s) failed, and reading stopped early: {result.input_error}; "
            f"see {result.errors_uri}", file=sys.stderr,
        )
        return 1
    if result.rows_failed:
        print(f"serverless-ml: {result.rows_failed} line(s) failed; see {result.errors_uri}", file=sys.stderr)
        return 1
    return 0


def _shadow_line(shadow: dict, summary_uri: str | None) -> str:
    """The candidate's headline: agreement, or why it is missing; the summary has the rest."""
    if shadow["candidate"] == "compared" and shadow["agreement"] is None:
        return f"shadow: candidate {shadow['candidate_version']} had no row to compare; see {summary_uri}"
    if shadow["candidate"] == "compared":
        return (f"shadow: candidate {shadow['candidate_version']} agrees on {shadow['agreement']:.2%} of "
                f"{shadow['rows_compared']:,} rows compared; see {summary_uri}")
    what = "could not be loaded" if shadow["candidate"] == "load_failed" else "stopped"
    return f"shadow: the candidate {what}: {shadow['error']}; the predictions are written; see {summary_uri}"


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 256:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 1 to 256; got {text!r}")
    return count


def _as_uri(text: str) -> str:
    """A URI as given; a plain local path (relative or absolute) as its file:// URI."""
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    return "file://" + path.as_posix() + ("/" if text.endswith(("/", os.sep)) else "")


class _PlainProgress:
    """Progress as a line on stderr at most once a second, where tqdm is not installed."""

    def __init__(self, total: int | None) -> None:
        import time

        self._clock = time.monotonic
        self._total = total
        self._next = self._clock() + 1.0

    def update(self, rows: int, read_bytes: int) -> None:
        if self._clock() < self._next:
            return
        self._next = self._clock() + 1.0
        share = f" ({100 * read_bytes / self._total:.0f}%)" if self._total else ""
        print(f"serverless-ml: {rows} rows read{share}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _TqdmProgress:
    def __init__(self, tqdm, total: int | None) -> None:
        self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="batch", file=sys.stderr)
        self._done = 0

    def update(self, rows: int, read_bytes: int) -> None:
        self._bar.update(read_bytes - self._done)
        self._done = read_bytes
        self._bar.set_postfix(rows=rows, refresh=False)

    def close(self) -> None:
        self._bar.close()


def _progress_bar(total: int | None):
    """A progress bar over the input's bytes on a terminal (tqdm when installed); else None."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainProgress(total)
    return _TqdmProgress(tqdm, total)


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
