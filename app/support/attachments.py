"""Ticket attachments: an allow-list of types, each checked by its content and not
only by its name, a size limit, and storage outside the web root under a random
name. Files are only ever sent back as downloads (never shown inline)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import abort, current_app, send_file
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage

from app.support.tickets import StoredFile

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_FILES = 5
SUBFOLDER = "tickets"


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# extension -> (content type sent back, check of the first bytes / whole content)
ALLOWED_TYPES = {
    "png": ("image/png", lambda data: data.startswith(b"\x89PNG\r\n\x1a\n")),
    "jpg": ("image/jpeg", lambda data: data.startswith(b"\xff\xd8\xff")),
    "jpeg": ("image/jpeg", lambda data: data.startswith(b"\xff\xd8\xff")),
    "gif": ("image/gif", lambda data: data[:6] in (b"GIF87a", b"GIF89a")),
    "pdf": ("application/pdf", lambda data: data.startswith(b"%PDF-")),
    "zip": ("application/zip", lambda data: data.startswith(b"PK\x03\x04")),
    "txt": ("text/plain", _is_text),
    "log": ("text/plain", _is_text),
}


class UploadError(ValueError):
    """A refused upload; the message is fit to show. Nothing was stored."""


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size / 1024 / 1024:.3g} MB"


def max_bytes() -> int:
    return int(current_app.config.get("TICKET_ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def allowed_extensions() -> list[str]:
    return sorted(ALLOWED_TYPES)


def store_folder() -> Path:
    folder = Path(current_app.config["UPLOAD_FOLDER"]) / SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _display_name(filename: str) -> str:
    # Browsers may send a full client-side path; keep the last part only.
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    return "".join(ch for ch in name if ch.isprintable())[:255]


def _checked(upload: FileStorage, limit: int) -> tuple[str, str, bytes]:
    name = _display_name(upload.filename)
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ALLOWED_TYPES:
        raise UploadError(_("%(name)s: this type of file is not accepted (allowed: %(types)s).",
                            name=name or "?", types=", ".join(allowed_extensions())))
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise UploadError(_("%(name)s is larger than %(size)s.", name=name,
                            size=human_size(limit)))
    if not data:
        raise UploadError(_("%(name)s is empty.", name=name))
    content_type, looks_right = ALLOWED_TYPES[extension]
    if not looks_right(data):
        raise UploadError(_("%(name)s does not contain what its name says (%(type)s).",
                            name=name, type=extension))
    return name, content_type, data


def store_uploads(uploads: list[FileStorage]) -> list[StoredFile]:
    """Check every file first, then write them all; on any refusal nothing is written."""
    uploads = [upload for upload in uploads if upload is not None and upload.filename]
    if len(uploads) > MAX_FILES:
        raise UploadError(_("Attach at most %(count)s files at once.", count=MAX_FILES))
    limit = max_bytes()
    checked = [_checked(upload, limit) for upload in uploads]
    folder = store_folder()
    stored: list[StoredFile] = []
    try:
        for name, content_type, data in checked:
            stored_name = secrets.token_hex(16)
            descriptor = os.open(folder / stored_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            stored.append(StoredFile(original_name=name, stored_name=stored_name,
                                     content_type=content_type, size=len(data)))
    except OSError:
        remove_stored(stored)
        raise
    return stored


def remove_stored(stored: list[StoredFile]) -> None:
    """Undo store_uploads() when the database refused the message they belong to."""
    folder = store_folder()
    for item in stored:
        try:
            (folder / item.stored_name).unlink()
        except FileNotFoundError:
            pass


def download(attachment):
    """The stored file as a download, whatever its type: never rendered by the browser."""
    path = store_folder() / attachment.stored_name
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=attachment.content_type, as_attachment=True,
                         download_name=attachment.original_name or "attachment",
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
