"""Unpacking plugin archives (zip, tar, wheel) without letting an entry escape the target folder.

Every entry is checked before anything is written: a path that climbs out (``../``), an absolute
path or drive letter, a link or a device file refuses the whole archive, naming the entries.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from studio.plugins.manifest import PluginError

ARCHIVE_SUFFIXES = (".zip", ".whl", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _bad_name(name: str) -> str | None:
    """Why an entry name is unsafe, or None."""
    if "\x00" in name:
        return "has a NUL character in its name"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "climbs out of the folder with '..'"
    return None


def archive_problems(path: Path) -> list[str]:
    """Every unsafe entry of the archive at ``path`` (empty when it is safe to unpack)."""
    problems: list[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    why = _bad_name(info.filename)
                    mode = info.external_attr >> 16
                    if why is None and stat.S_ISLNK(mode):
                        why = "is a symbolic link"
                    if why is not None:
                        problems.append(f"{info.filename!r} {why}")
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                for member in archive.getmembers():
                    why = _bad_name(member.name)
                    if why is None and (member.issym() or member.islnk()):
                        why = f"is a link (to {member.linkname!r})"
                    elif why is None and not (member.isfile() or member.isdir()):
                        why = "is a device or special file"
                    if why is not None:
                        problems.append(f"{member.name!r} {why}")
        else:
            raise PluginError(f"{path}: not a zip or tar archive")
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise PluginError(f"{path}: cannot read the archive ({exc})") from None
    return problems


def check_archive(path: Path) -> None:
    """Refuse an archive with any unsafe entry; nothing is written either way."""
    problems = archive_problems(path)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise PluginError(f"{path.name}: refused, nothing was written: entries would land outside the plugin "
                          f"folder ({shown})")


def extract(path: Path, target: Path) -> None:
    """Unpack a checked archive into ``target`` (which must exist)."""
    check_archive(path)
    root = target.resolve()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                destination = (root / info.filename.replace("\\", "/")).resolve()
                if not destination.is_relative_to(root):  # checked above; kept as a second lock
                    raise PluginError(f"{path.name}: entry {info.filename!r} would land outside the folder")
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(destination, "wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
    else:
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                destination = (root / member.name).resolve()
                if not destination.is_relative_to(root):
                    raise PluginError(f"{path.name}: entry {member.name!r} would land outside the folder")
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with source, open(destination, "wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
