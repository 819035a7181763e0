"""Reading archives users upload (zip, tar with any compression) without trusting them.

Before a byte of content is read, every member is checked: its path must be relative and
stay inside the archive (no ``/abs``, ``..``, backslashes or drive letters: zip-slip), it
must be a regular file (links, devices and fifos are refused), the member count and the
expanded total must stay under the limits (zip bombs), and so must each member's size.
Zip members are read through :mod:`zipfile`, which never returns more than a member's
declared size, so checking declared sizes bounds what decompression can produce; tar
member sizes are the real byte counts of the stream.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from core.config import Settings
from core.errors import SynthgenError
from errors import UserError

# Files archivers and desktops add on their own; skipped (and listed) rather than refused.
JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
JUNK_DIRS = frozenset({"__MACOSX"})


class Rejected(SynthgenError, UserError):
    """An upload refused as a whole; the subclass name is the error ``type`` users see."""

    status_hint = 422
    title = "Upload refused"


class UnsafePath(Rejected):
    """A member would land outside the archive's folder, or is a link or device."""


class ArchiveTooLarge(Rejected):
    """The file, or what it expands to, is over its limit."""


class TooManyFiles(Rejected):
    pass


class FileTooLarge(Rejected):
    """One member is over the per-file limit."""


class BadArchive(Rejected):
    """Not a readable archive of the declared format."""


@dataclass(frozen=True)
class Limits:
    upload_bytes: int
    expanded_bytes: int
    files: int
    file_bytes: int

    @classmethod
    def for_datasets(cls, settings: Settings) -> Limits:
        return cls(
            settings.dataset_max_upload_bytes,
            settings.dataset_max_expanded_bytes,
            settings.dataset_max_files,
            settings.dataset_max_file_bytes,
        )

    @classmethod
    def for_imports(cls, settings: Settings) -> Limits:
        # A model is one upload; its size bounds every file and the expanded whole.
        size = settings.import_max_bytes
        return cls(size, size, settings.import_max_files, size)


@dataclass(frozen=True)
class Member:
    name: str
    """The member's path, normalised (posix, no leading ./)."""
    size: int


def safe_name(raw: str) -> str:
    """``raw`` as a relative posix path inside the archive, or UnsafePath."""
    if "\\" in raw or "\0" in raw:
        raise UnsafePath(f"member {raw!r} has a backslash or NUL in its path; refused")
    path = PurePosixPath(raw)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise UnsafePath(
            f"member {raw!r} has an absolute path; archives must hold relative paths only"
        )
    if ".." in path.parts:
        raise UnsafePath(
            f"member {raw!r} would be written outside the archive's folder (zip-slip); "
            "archives must not hold '..' in their paths"
        )
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise UnsafePath(f"member {raw!r} has an empty path")
    return "/".join(parts)


def is_junk(name: str) -> bool:
    parts = name.split("/")
    return parts[-1] in JUNK_NAMES or parts[-1].startswith("._") or bool(JUNK_DIRS & set(parts))


def is_archive(path: Path) -> bool:
    """A zip, or a tar with at least one member (zero blocks read as an empty tar)."""
    if zipfile.is_zipfile(path):
        return True
    try:
        with tarfile.open(path, "r:*") as archive:
            return archive.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


class Archive:
    """A zip or tar (plain, gz, bz2, xz) whose members passed the checks above.

    members: the regular files, in archive order (junk left out); ignored: junk names.
    """

    def __init__(self, path: Path, limits: Limits, *, kind: str | None = None) -> None:
        self.path = path
        self.limits = limits
        self.kind = kind or ("zip" if zipfile.is_zipfile(path) else "tar")
        self.members: list[Member] = []
        self.ignored: list[str] = []
        self.expanded = 0  # bytes the members expand to
        self._raw: dict[str, str] = {}  # normalised name -> name as stored
        try:
            if self.kind == "zip":
                self._scan_zip()
            else:
                self._scan_tar()
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise BadArchive(f"the file is not a readable {self.kind} archive: {exc}") from None

    def _add(self, raw: str, size: int) -> None:
        name = safe_name(raw)
        if name in self._raw:
            raise BadArchive(f"member {name!r} appears twice in the archive")
        if len(self._raw) + 1 > self.limits.files:
            raise TooManyFiles(f"the archive holds more than {self.limits.files} files, the limit")
        if size > self.limits.file_bytes:
            raise FileTooLarge(
                f"{name} is {size} bytes, over the limit of {self.limits.file_bytes} bytes per file"
            )
        self._raw[name] = raw
        if is_junk(name):
            self.ignored.append(name)
            return
        self.members.append(Member(name, size))
        self.expanded += size
        if self.expanded > self.limits.expanded_bytes:
            raise ArchiveTooLarge(
                f"the archive expands to more than {self.limits.expanded_bytes} bytes, the "
                "limit (a zip bomb?); refused before expanding it"
            )

    def _scan_zip(self) -> None:
        with zipfile.ZipFile(self.path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    safe_name(info.filename)
                    continue
                if stat.S_IFMT(info.external_attr >> 16) == stat.S_IFLNK:
                    raise UnsafePath(f"member {info.filename!r} is a symbolic link; refused")
                if info.flag_bits & 0x1:
                    raise BadArchive(f"member {info.filename!r} is encrypted; upload it plain")
                self._add(info.filename, info.file_size)

    def _scan_tar(self) -> None:
        with tarfile.open(self.path, "r:*") as archive:
            for info in archive:
                if info.isdir():
                    safe_name(info.name)
                elif info.issym() or info.islnk():
                    raise UnsafePath(
                        f"member {info.name!r} is a link (to {info.linkname!r}); refused"
                    )
                elif not info.isfile():
                    raise UnsafePath(f"member {info.name!r} is not a regular file; refused")
                else:
                    self._add(info.name, info.size)

    def read(self, names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """(name, bytes) of the named members, in archive order, one at a time."""
        for name, handle in self._open(names):
            yield name, handle.read()

    def _open(self, names: Iterable[str]) -> Iterator[tuple[str, IO[bytes]]]:
        wanted = set(names)
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as archive:
                for member in self.members:
                    if member.name in wanted:
                        with archive.open(self._raw[member.name]) as handle:
                            yield member.name, handle
            return
        by_raw = {self._raw[m.name]: m.name for m in self.members if m.name in wanted}
        with tarfile.open(self.path, "r:*") as archive:
            for info in archive:
                name = by_raw.get(info.name)
                if name is not None and info.isfile():
                    extracted = archive.extractfile(info)
                    assert extracted is not None  # noqa: S101 - a regular file has a handle
                    yield name, extracted

    def extract(self, directory: Path, *, strip: str = "") -> list[Path]:
        """Write every member under ``directory`` (less the leading ``strip/``), streamed;
        returns the files written. Paths were checked at scan time; each is checked
        again against ``directory`` as it is written."""
        root = directory.resolve()
        written = []
        for name, handle in self._open(m.name for m in self.members):
            relative = name[len(strip) + 1 :] if strip and name.startswith(strip + "/") else name
            target = (root / relative).resolve()
            if not target.is_relative_to(root):
                raise UnsafePath(f"member {name!r} would be written outside the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                shutil.copyfileobj(handle, out, 1 << 20)
            written.append(target)
        return written


def common_root(names: list[str]) -> str:
    """The one folder every name is inside ("" when there is none): archives of a folder
    usually hold it as their top level."""
    tops = {name.split("/", 1)[0] for name in names}
    nested = all("/" in name for name in names)
    return tops.pop() if len(tops) == 1 and nested else ""
