"""Terraform, checkov and python-hcl2 for the tests of infra/: where they are, how to run them
without touching the repository or the network.

Offline provider: the hashicorp/aws provider comes from a filesystem mirror on this machine
(``/opt/tf-plugins`` here). :func:`find_provider_mirror` looks for it in ``TF_PROVIDER_MIRROR``
and the usual places, and :func:`write_cli_config` writes a Terraform CLI configuration that
installs the provider from that mirror and from nowhere else. Every run gets that file through
``TF_CLI_CONFIG_FILE``, its ``.terraform`` folder through ``TF_DATA_DIR`` in a temporary folder,
and a copy of the configuration, so ``terraform init`` writes neither ``.terraform/`` nor
``.terraform.lock.hcl`` into infra/.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
CLOUDS = ("aws", "azure", "gcp")

# Where a filesystem mirror (the "unpacked" layout: <host>/<namespace>/<type>/<version>/<os_arch>/)
# usually lives; TF_PROVIDER_MIRROR comes first.
MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)

# What every test that sets the functions' environment must set (core/settings.py reads them).
FUNCTION_SETTINGS = (
    "MODEL_URI", "MODEL_SHA256", "MODEL_VERSION", "MAX_ROWS", "MAX_BODY_BYTES",
    "CORS_ALLOW_ORIGINS", "LOG_LEVEL", "PRELOAD_MODEL", "STORAGE_TIMEOUT_SECONDS",
    "SKOPS_TRUSTED_TYPES", "STRICT_MODEL_VERSION", "ONNX_THREADS", "BATCH_CHUNK_ROWS", "BATCH_PART_BYTES",
)

# The settings every configuration takes straight from a variable of the same name, type, default
# and validation on all three clouds: environment name -> (variable, the expression in
# local.settings as python-hcl2 reads it). Lists are joined with commas (core splits them there);
# booleans and numbers go through tostring().
SETTING_VARIABLES = {
    "MODEL_VERSION": ("model_version", "${var.model_version}"),
    "MAX_ROWS": ("max_rows", "${tostring(var.max_rows)}"),
    "MAX_BODY_BYTES": ("max_body_bytes", "${tostring(var.max_body_bytes)}"),
    "CORS_ALLOW_ORIGINS": ("cors_allow_origins", '${join(",", var.cors_allow_origins)}'),
    "LOG_LEVEL": ("log_level", "${var.log_level}"),
    "PRELOAD_MODEL": ("preload_model", "${tostring(var.preload_model)}"),
    "STORAGE_TIMEOUT_SECONDS": ("storage_timeout_seconds", "${tostring(var.storage_timeout_seconds)}"),
    "SKOPS_TRUSTED_TYPES": ("skops_trusted_types", '${join(",", var.skops_trusted_types)}'),
    "STRICT_MODEL_VERSION": ("strict_model_version", "${tostring(var.strict_model_version)}"),
    "ONNX_THREADS": ("onnx_threads", "${tostring(var.onnx_threads)}"),
    "BATCH_CHUNK_ROWS": ("batch_chunk_rows", "${tostring(var.batch_chunk_rows)}"),
    "BATCH_PART_BYTES": ("batch_part_bytes", "${tostring(var.batch_part_bytes)}"),
}


def platform_dir() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


@dataclass(frozen=True)
class ProviderMirror:
    path: Path  # the folder that holds registry.terraform.io/
    versions: tuple[str, ...]  # the hashicorp/aws versions it has for this platform


def find_provider_mirror(provider: str = "hashicorp/aws") -> ProviderMirror | None:
    """The first filesystem mirror that holds ``provider`` for this platform, or None."""
    candidates = [os.environ.get("TF_PROVIDER_MIRROR", "")] + list(MIRROR_CANDIDATES)
    for candidate in filter(None, candidates):
        root = Path(candidate).expanduser()
        provider_dir = root / "registry.terraform.io" / provider
        if not provider_dir.is_dir():
            continue
        versions = tuple(sorted(
            (entry.name for entry in provider_dir.iterdir() if (entry / platform_dir()).is_dir()),
            key=lambda text: tuple(int(part) if part.isdigit() else 0 for part in text.split(".")),
        ))
        if versions:
            return ProviderMirror(root, versions)
    return None


def write_cli_config(path: Path, mirror: ProviderMirror, provider: str = "hashicorp/aws") -> Path:
    """A CLI configuration that installs ``provider`` from ``mirror`` only (never the network)."""
    address = f"registry.terraform.io/{provider}"
    path.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror.path))}\n"
        f"    include = [{json.dumps(address)}]\n"
        "  }\n"
        "  direct {\n"
        f"    exclude = [{json.dumps(address)}]\n"
        "  }\n"
        "}\n"
        "disable_checkpoint = true\n"
    )
    return path


def terraform_executable() -> str | None:
    return shutil.which("terraform")


def require_terraform() -> str:
    """Terraform's path, or the test is skipped saying where to get it."""
    import pytest

    found = terraform_executable()
    if not found:
        pytest.skip("terraform is not on the PATH (https://developer.hashicorp.com/terraform/install)")
    return found


def require_provider_mirror(provider: str = "hashicorp/aws") -> ProviderMirror:
    """The filesystem mirror that holds ``provider``, or the test is skipped naming where it looked."""
    import pytest

    require_terraform()
    mirror = find_provider_mirror(provider)
    if mirror is None:
        pytest.skip(
            f"the Terraform provider {provider} is not in a filesystem mirror for "
            f"{platform_dir()} (looked in TF_PROVIDER_MIRROR and {', '.join(MIRROR_CANDIDATES)})"
        )
    return mirror


def terraform_env(cli_config: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of one Terraform run: no real cloud credentials, no prompts, no checkpoint."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AWS_", "ARM_", "GOOGLE_", "TF_", "CLOUDSDK_"))
    }
    env.update({
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_DATA_DIR": str(data_dir),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    env.update(extra)
    return env


def run_terraform(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [terraform_executable() or "terraform", *args, "-no-color"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


@dataclass
class Workdir:
    """A copy of one infra/ configuration and the environment its Terraform runs get."""

    path: Path
    cli_config: Path

    def env(self, **extra: str) -> dict[str, str]:
        return terraform_env(self.cli_config, self.path / ".terraform-data", **extra)

    def run(self, *args: str, timeout: float = 240, **extra_env: str) -> subprocess.CompletedProcess:
        return run_terraform(list(args), self.path, self.env(**extra_env), timeout=timeout)


MODULES = ("bundle",)  # infra/modules/<name>, which every configuration calls as ../modules/<name>


def copy_config(cloud: str, destination: Path) -> Path:
    """A copy of infra/<cloud>/*.tf under ``destination``/<cloud>, with the modules it calls beside
    it as in infra/; Terraform may write its lock file there, not into the repo. Returns the
    configuration's folder (``cloud`` may also be ``modules/<name>``, a module on its own)."""
    for folder in (cloud, *(f"modules/{name}" for name in MODULES)):
        (destination / folder).mkdir(parents=True, exist_ok=True)
        # *.tftpl: templates a configuration reads (aws: the fan-out state machine's definition)
        for source in sorted([*(INFRA / folder).glob("*.tf"), *(INFRA / folder).glob("*.tftpl")]):
            shutil.copy2(source, destination / folder / source.name)
    return destination / cloud


def checkov_executable() -> str | None:
    """CHECKOV, else the project's own venv (the Makefile's .venv-checkov), else the PATH."""
    configured = os.environ.get("CHECKOV", "").strip()
    if configured:
        return configured if Path(configured).exists() or shutil.which(configured) else None
    beside = REPO / ".venv-checkov" / "bin" / "checkov"
    if beside.exists():
        return str(beside)
    return shutil.which("checkov")


# --- python-hcl2 --------------------------------------------------------------------------------

def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of string literals and block labels; 7 drops them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            _unquote(key): _plain(item) for key, item in value.items()
            if key not in ("__is_block__", "__comments__", "__start_line__", "__end_line__")
        }
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return _unquote(value)


@dataclass
class HclConfig:
    """All .tf files of one folder, parsed: ``resources[type][name]`` is the resource's body
    (nested blocks as lists of dicts, expressions as ``${...}`` strings)."""

    resources: dict[str, dict[str, dict]]
    data: dict[str, dict[str, dict]]
    variables: dict[str, dict]
    outputs: dict[str, dict]
    locals: dict[str, Any]
    texts: dict[str, str]  # file name -> source
    modules: dict[str, dict] = field(default_factory=dict)  # module calls by name: their arguments

    def resource(self, kind: str, name: str) -> dict:
        assert kind in self.resources and name in self.resources[kind], (
            f"infra has no resource {kind}.{name}; it has {sorted(self.resources)}")
        return self.resources[kind][name]


def parse_config(folder: Path) -> HclConfig:
    import hcl2

    config = HclConfig({}, {}, {}, {}, {}, {})
    for path in sorted(folder.glob("*.tf")):
        text = path.read_text()
        config.texts[path.name] = text
        with open(path) as handle:
            parsed = _plain(hcl2.load(handle))
        for section, target in (("resource", config.resources), ("data", config.data)):
            for entry in parsed.get(section, []):
                for kind, named in entry.items():
                    target.setdefault(kind, {}).update(named)
        for entry in parsed.get("variable", []):
            config.variables.update(entry)
        for entry in parsed.get("output", []):
            config.outputs.update(entry)
        for entry in parsed.get("locals", []):
            config.locals.update(entry)
        for entry in parsed.get("module", []):
            config.modules.update(entry)
    return config


def block(body: dict, name: str) -> dict:
    """The one nested block ``name`` of a parsed body."""
    found = body.get(name)
    assert isinstance(found, list) and len(found) == 1, f"expected one {name} block, found {found!r}"
    return found[0]
