"""Storage for model artifacts: every file is written whole or not at all.

Django's :class:`~django.core.files.storage.FileSystemStorage` writes straight
into the final name, so a reader (or a crash) can meet half a file. Here each
file goes to a temporary name in the same folder, is flushed to disk and then
renamed over the target, and saving the same name again replaces it. Set
``STORAGES["model_weights"]``/``["scalers"]`` to another backend (S3) in settings
to keep artifacts elsewhere; the training service only uses the storage API.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.files.base import File
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible


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
