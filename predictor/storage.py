"""Storage for model artifacts: every file is written whole or not at all.

Django's :class:`~django.core.files.storage.FileSystemStorage` writes straight
into the final name, so a reader (or a crash) can meet half a file. Here each
file goes to a temporary name in the same folder, is flushed to disk and then
renamed over the target, and saving the same name again replaces it.

:class:`AtomicS3Storage` keeps the same contract on S3 (or any S3-compatible
store): an object is uploaded under a temporary key and copied to its final key
only once the upload is complete, so the final key is only ever a finished file
and a failed upload leaves the previous object in place.

``cryptooracle.artifact_storage`` builds the ``STORAGES["model_weights"]``/``["scalers"]``
entries from the settings; the services only use the storage API.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import uuid
from pathlib import Path
from typing import Any

from django.core.files.base import File
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


@deconstructible
class AtomicFileSystemStorage(FileSystemStorage):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(*args, **kwargs)

    def _save(self, name: str, content: File) -> str:  # type: ignore[type-arg]
        path = Path(self.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                if hasattr(content, "seek"):
                    content.seek(0)
                for chunk in content.chunks():
                    handle.write(chunk if isinstance(chunk, bytes) else chunk.encode())
                handle.flush()
                os.fsync(handle.fileno())
            if self.file_permissions_mode is not None:
                os.chmod(tmp, self.file_permissions_mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(path.relative_to(Path(self.location).resolve())).replace(os.sep, "/")


def temporary_name(name: str) -> str:
    """A hidden, unique sibling of ``name`` for an upload in progress."""
    head, tail = posixpath.split(clean_name(name))
    return posixpath.join(head, f".{tail}.{uuid.uuid4().hex}.tmp")


@deconstructible
class AtomicS3Storage(S3Storage):  # type: ignore[misc]  # django-storages has no types
    """S3 storage whose final keys only ever hold completely uploaded files."""

    def _save(self, name: str, content: File) -> str:  # type: ignore[type-arg]
        final: str = clean_name(name)
        tmp = temporary_name(final)
        client = self.connection.meta.client
        tmp_key = self._normalize_name(tmp)
        try:
            super()._save(tmp, content)
            # The copy carries the write parameters (content type, encryption) of the final
            # name: S3 does not keep server-side encryption settings across a copy by itself.
            params = self._get_write_parameters(self._normalize_name(final), content)
            client.copy(
                {"Bucket": self.bucket_name, "Key": tmp_key},
                self.bucket_name,
                self._normalize_name(final),
                ExtraArgs={**params, "MetadataDirective": "REPLACE"},
                Config=self.transfer_config,
            )
        finally:
            client.delete_object(Bucket=self.bucket_name, Key=tmp_key)
        return final
