"""Deterministic zip archives: the same files give the same bytes, whenever and wherever built.

Entries are sorted by path, stamped 1980-01-01 00:00 (the zip format's epoch), and carry fixed
Unix permissions: 0644, or 0755 where the file is executable. Lambda runs the code as another
user than the one who built it, so every file must be world-readable whatever this machine's umask.
Only files are stored; the platforms create the folders when they unpack.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ArchiveSize:
    files: int
    unzipped_bytes: int
    zipped_bytes: int


def files_of(root: Path) -> list[tuple[str, Path]]:
    """(archive name, path) of every file under ``root``, sorted by archive name."""
    entries = [(path.relative_to(root).as_posix(), path) for path in root.rglob("*") if path.is_file()]
    return sorted(entries)


def write_zip(root: Path, archive: Path) -> ArchiveSize:
    """Zip the contents of ``root`` (``root`` itself is not an entry) into ``archive``, replacing it
    only once the new one is complete."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    unzipped = 0
    entries = files_of(root)
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.create_system = 3  # Unix, so that the permission bits below are read
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as source, bundle.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
            unzipped += info.file_size
    os.replace(partial, archive)
    return ArchiveSize(files=len(entries), unzipped_bytes=unzipped, zipped_bytes=archive.stat().st_size)


def folder_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
