import hashlib

import pytest

from comms.errors import CommsError, NotFound
from comms.templates import attachments as att


def test_stored_once_by_content_and_name(store):
    a = att.add_attachment(store, "terms.pdf", b"%PDF-1.4 terms")
    assert att.add_attachment(store, "terms.pdf", b"%PDF-1.4 terms") == a
    b = att.add_attachment(store, "conditions.pdf", b"%PDF-1.4 terms")
    assert b != a  # same bytes, another name the recipient sees
    c = att.add_attachment(store, "terms.pdf", b"%PDF-1.5 new terms")
    assert c not in (a, b)
    rows = store.rows("SELECT id, sha256, content_type, size FROM attachments ORDER BY id")
    assert rows[0]["sha256"] == hashlib.sha256(b"%PDF-1.4 terms").hexdigest()
    assert rows[0]["content_type"] == "application/pdf" and rows[0]["size"] == 14
    assert att.attachment_data(store, a) == b"%PDF-1.4 terms"


def test_content_types_and_safe_names(store, tmp_path):
    assert att.guess_type("photo.JPG") == "image/jpeg"
    assert att.guess_type("data.unknownext") == "application/octet-stream"
    aid = att.add_attachment(store, "C:\\Users\\jana\\price\nlist.xlsx", b"xlsx")
    (meta,) = att.get_attachments(store, [aid])
    assert meta.filename == "pricelist.xlsx"
    assert meta.content_type.endswith("spreadsheetml.sheet")
    f = tmp_path / "a.txt"
    f.write_text("hello")
    (meta,) = att.get_attachments(store, [att.add_file(store, f)])
    assert (meta.filename, meta.content_type, meta.size) == ("a.txt", "text/plain", 5)
    with pytest.raises(CommsError, match="does not exist"):
        att.add_file(store, tmp_path / "missing.pdf")
    with pytest.raises(CommsError, match="needs a file name"):
        att.add_attachment(store, "  ", b"x")


def test_size_limit_per_message(store, monkeypatch):
    monkeypatch.setenv("COMMS_MAX_ATTACHMENT_MB", "1")
    assert att.max_message_bytes() == 1024 * 1024
    with pytest.raises(CommsError, match=r"big.bin is 1.0 MB; the limit per message is 1.0 MB"):
        att.add_attachment(store, "big.bin", b"x" * (1024 * 1024 + 1))
    half = att.add_attachment(store, "half.bin", b"x" * (600 * 1024))
    other = att.add_attachment(store, "other.bin", b"y" * (600 * 1024))
    with pytest.raises(CommsError, match="Attachments total 1.2 MB"):
        att.check_total(att.get_attachments(store, [half, other]))
    att.check_total(att.get_attachments(store, [half]))


def test_lookups(store):
    with pytest.raises(NotFound):
        att.get_attachments(store, [99])
    with pytest.raises(NotFound):
        att.attachment_data(store, 99)
    assert att.get_attachments(store, []) == []
    assert att.human_size(12) == "12 B" and att.human_size(2048) == "2 kB"
