"""One level of an object store "directory" (a bucket or a key prefix) as MRS's FileStatusV2.

Object stores have no owners, modes or directories: entries are shown as Hadoop's S3A shows
them (no owner or group, ``666`` for an object, ``777`` for a prefix, replication 1, S3A's
32 MB block size; a prefix has no length and no times).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mrs_jobs.storage.files import MAX_ENTRIES, FileStatus, ListingTooLarge
from mrs_jobs.storage.objectstore import (
    ObjectStoreError,
    ObjectURI,
    S3Credentials,
    describe_error,
    filesystem,
)

__all__ = ["ObjectListing"]

S3A_BLOCK_SIZE = 32 * 1024 * 1024


def _status(info: Any, name: str) -> FileStatus:
    from pyarrow import fs as pafs

    is_dir = info.type == pafs.FileType.Directory
    mtime = 0 if is_dir or info.mtime is None else int(info.mtime.timestamp() * 1000)
    return FileStatus(
        path_suffix=name,
        owner="",
        group="",
        permission="777" if is_dir else "666",
        replication=1,
        block_size=0 if is_dir else S3A_BLOCK_SIZE,
        length=0 if is_dir else int(info.size or 0),
        type="DIRECTORY" if is_dir else "FILE",
        children_num=0,
        access_time=0,
        modification_time=mtime,
    )


class ObjectListing:
    """Lists ``ref`` with ``creds``; every failure is an ObjectStoreError without a secret."""

    def __init__(self, creds: S3Credentials) -> None:
        self.creds = creds
        self.fs = filesystem(creds)

    def _infos(self, path: str) -> list[Any]:
        from pyarrow import fs as pafs

        found = self.fs.get_file_info(pafs.FileSelector(path, recursive=False))
        if len(found) > MAX_ENTRIES:
            raise ListingTooLarge(path)
        return found

    def entries(self, ref: ObjectURI) -> list[FileStatus]:
        """The entries under ``ref`` (an object lists itself with an empty ``path_suffix``)."""
        from pyarrow import fs as pafs

        try:
            info = self.fs.get_file_info(ref.path)
            if info.type == pafs.FileType.File:
                return [_status(info, "")]
            if info.type == pafs.FileType.NotFound:
                raise FileNotFoundError(str(ref))
            return [_status(i, i.base_name) for i in self._infos(ref.path)]
        except (FileNotFoundError, ListingTooLarge, ObjectStoreError):
            raise
        except Exception as exc:
            raise ObjectStoreError(
                f"cannot list {ref}: {describe_error(exc, self.creds)}"
            ) from None

    def with_children(self, ref: ObjectURI, rows: list[FileStatus]) -> list[FileStatus]:
        """``rows`` with each prefix's ``children_num`` (0 when it cannot be listed)."""
        out = []
        for r in rows:
            if r.type == "DIRECTORY" and r.path_suffix:
                try:
                    r = replace(r, children_num=len(self._infos(f"{ref.path}/{r.path_suffix}")))
                except Exception:  # noqa: BLE001 - a count is not worth failing the page
                    pass
            out.append(r)
        return out
