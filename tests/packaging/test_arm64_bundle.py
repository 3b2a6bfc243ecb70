"""``serverless-ml package --provider aws --arch arm64``: the bundle for Graviton functions holds
only aarch64 machine code (manylinux aarch64 wheels), read from each shared object's ELF header,
and says so in its description, which infra/aws checks against its architecture variable."""

from __future__ import annotations

import json
import struct
import zipfile

# ELF e_machine values (the ELF specification's registry)
EM_X86_64, EM_AARCH64 = 62, 183


def _machines(archive) -> dict[str, int]:
    """``{name: e_machine}`` of every ELF file in the zip (.so files and what else is one)."""
    found = {}
    with zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            if info.is_dir():
                continue
            with bundle.open(info) as file:
                header = file.read(20)
            if header[:4] == b"\x7fELF":
                endian = "<" if header[5] == 1 else ">"
                found[info.filename] = struct.unpack(endian + "H", header[18:20])[0]
    return found


def test_the_arm64_bundle_holds_aarch64_code_only(built):
    archive = built("aws", "--arch", "arm64")
    machines = _machines(archive)
    compiled = [name for name in machines if name.startswith(("numpy/", "scipy/", "sklearn/"))]
    assert len(compiled) > 50, sorted(machines)[:20]  # NumPy's, SciPy's and scikit-learn's extensions
    assert {name for name, machine in machines.items() if machine != EM_AARCH64} == set()
    description = json.loads(archive.with_name(archive.stem + ".bundle.json").read_text())
    assert (description["architecture"], description["python_version"]) == ("arm64", "3.13")


def test_the_default_bundle_holds_x86_64_code_only(built):
    machines = _machines(built("aws"))
    assert machines and set(machines.values()) == {EM_X86_64}
