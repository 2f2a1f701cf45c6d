"""A document's PDF from a staff or portal request, the one way: the request renders
only the HTML (app.billing.pdf.document_html); the PDF of that HTML is served from
the document store when it is there, else one Celery task is asked for it and the
answer is a page that polls this same URL with ?status=1, then downloads. With
in-process Celery (the embedded default) the file is made by then and served at once.

The caller checks access first (the same check as before: a client's own record, a
staff permission), so the status URL is guarded by exactly the same check."""
from __future__ import annotations

from collections.abc import Callable

from flask import Response, jsonify, make_response, request, send_file

from app.billing.pdf import document_html, queue_pdf


def pdf_download(kind: str, record_id: int, render_page: Callable[..., str]) -> Response:
    """render_page: the view's render_template (staff views pass the Flask-AppBuilder
    one, so the waiting page takes the staff layout; the portal passes Flask's)."""
    document = document_html(kind, record_id)
    pdf = _open(document.path)
    if pdf is None:
        queue_pdf(document)
        pdf = _open(document.path)
    if request.args.get("status"):
        if pdf is not None:
            pdf.close()
        return _private(jsonify({"ready": pdf is not None, "download_url": request.path}))
    if pdf is None:
        page = render_page("pdf_preparing.html", download_name=document.download_name,
                           status_url=f"{request.path}?status=1",
                           download_url=request.path)
        return _private(make_response(page))
    # Served from the open file: a cleanup between the check and the read changes nothing.
    return _private(send_file(pdf, mimetype="application/pdf", as_attachment=True,
                              download_name=document.download_name, max_age=0))


def _open(path: str):
    try:
        return open(path, "rb")  # noqa: SIM115 - send_file closes it
    except FileNotFoundError:
        return None


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    return response
