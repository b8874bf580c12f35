"""The outbox-folder backend: writes each message to a file, nothing leaves the machine.

E-mails become `<id>-<Message-ID>.eml` (open them in any mail client), SMS
`<id>.json`. It is the default backend whenever a channel is not configured
("demo mode").
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from comms.sending.senders.base import BaseSender, Outcome, OutgoingMessage
from comms.sending.senders.config import outbox_dir
from comms.sending.senders.mime import EmailIdentity, InvalidMessage, as_smtp_bytes, build_email


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file then rename it, so no half-written file is ever seen."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OutboxFolderSender(BaseSender):
    """Writes .eml / .json files into data/outbox/ (or $COMMS_OUTBOX_DIR)."""

    backend = "outbox"

    def __init__(
        self,
        channel: str,
        folder: Path | None = None,
        identity: EmailIdentity | None = None,
    ) -> None:
        super().__init__()
        self.channel = channel
        self.folder = Path(folder) if folder else outbox_dir()
        self.identity = identity or EmailIdentity.from_settings()

    def _connect(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def _send(self, message: OutgoingMessage) -> Outcome:
        try:
            if self.channel == "email":
                email = build_email(message, self.identity)
                msgid = str(email["Message-ID"])
                name = f"{message.id}-{msgid.strip('<>').replace('/', '_')}.eml"
                _write_atomically(self.folder / name, as_smtp_bytes(email))
                return Outcome.sent(msgid)
            provider_id = f"outbox-sms-{message.id}"
            record = {
                "id": provider_id,
                "message_id": message.id,
                "to": message.to_address,
                "body": message.body_text or "",
                "written_at": datetime.now(UTC).isoformat(),
            }
            data = json.dumps(record, ensure_ascii=False, indent=2).encode()
            _write_atomically(self.folder / f"{message.id}-sms.json", data)
            return Outcome.sent(provider_id)
        except InvalidMessage as exc:
            return Outcome.permanent(str(exc))
        except OSError as exc:
            return Outcome.transient(f"cannot write to {self.folder}: {exc}")
