"""The model digest is the same SHA-256 whichever implementation computes it."""

import hashlib
import os
import subprocess
import sys

import pytest

from core.model.digest import BUILTIN_BELOW_BYTES, sha256_hex


@pytest.mark.parametrize("size", [0, 1, 64, BUILTIN_BELOW_BYTES - 1, BUILTIN_BELOW_BYTES, 3 * BUILTIN_BELOW_BYTES])
def test_digest_equals_hashlib_on_both_sides_of_the_size_threshold(size):
    data = os.urandom(size)
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_a_small_model_is_hashed_without_loading_openssl():
    code = (
        "import sys\n"
        "from core.model.digest import sha256_hex\n"
        "assert sha256_hex(b'abc') == 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'\n"
        "print(int('_hashlib' in sys.modules))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "0"
