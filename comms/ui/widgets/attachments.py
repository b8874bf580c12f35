"""Attachment widgets shared by the Templates page, the bulk wizard and the client detail."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from comms.i18n import _, size
from comms.templates import attachments as att


def usage_caption(files: Sequence[att.Attachment], lead: str) -> None:
    """`lead` followed by how much of the per-message size limit the files use."""
    used = _("{used} of {limit} per message used.").format(
        used=size(att.total_size(files)), limit=size(att.max_message_bytes())
    )
    st.caption(f"{lead} {used}")


def file_rows(files: Sequence[att.Attachment], *, key_prefix: str) -> int | None:
    """One line per file with a Remove button; the id whose Remove was pressed, if any."""
    removed = None
    for a in files:
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.markdown(f":material/attach_file: **{a.filename}** · {a.content_type} · {size(a.size)}")
        if c2.button(_("Remove"), key=f"{key_prefix}_{a.id}", icon=":material/delete:"):
            removed = a.id
    return removed


def uploader(label: str, *, key: str) -> list[UploadedFile]:
    """A multi-file uploader whose stated per-file limit is the per-message limit."""
    # Without max_upload_size the widget advertises the server's 200 MB / config limit,
    # which the per-message limit then refuses after the upload.
    limit_mb = max(1, att.max_message_bytes() // (1024 * 1024))
    return (
        st.file_uploader(label, accept_multiple_files=True, key=key, max_upload_size=limit_mb) or []
    )
