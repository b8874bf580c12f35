"""Sender settings from the environment or `.streamlit/secrets.toml`.

Sections: [smtp], [twilio], [sending], and [feedback] (what closes the loop after
sending: public URL, unsubscribe key, bounce address and mailbox).

Each backend's settings are an immutable record validated at construction:
a malformed value fails there, naming the setting. Secrets (password, auth
token) live only in these records; `describe_backends()` shows everything
else and never a secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from comms.config import ROOT, float_setting, int_setting, setting
from comms.errors import ConfigError
from comms.i18n import _

SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_FROM = "Comms demo <comms@localhost>"
TWILIO_DEFAULT_BASE = "https://api.twilio.com"


def _has_newline(value: str | None) -> bool:
    return value is not None and ("\r" in value or "\n" in value)


def _int(env: str, section: str, key: str, default: int, minimum: int = 0) -> int:
    """A whole-number setting, its error naming the setting and never its value."""
    return int_setting(env, section, key, default, minimum=minimum)


def _float(env: str, section: str, key: str, default: float) -> float:
    """A non-negative number setting, its error naming the setting and never its value."""
    return float_setting(env, section, key, default)


def parse_from(raw: str, setting_name: str = "COMMS_FROM") -> Address:
    """'Name <addr@host>' or 'addr@host' -> Address, failing with the setting's name."""
    if _has_newline(raw):
        raise ConfigError(_("{setting} must be one line.").format(setting=setting_name))
    name, addr = parseaddr(raw)
    if not addr or "@" not in addr:
        raise ConfigError(
            _("{setting} must be an e-mail address, optionally 'Name <addr>'.").format(
                setting=setting_name
            )
        )
    username, domain = addr.rsplit("@", 1)
    return Address(display_name=name, username=username, domain=domain)


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach and log in to the SMTP relay, and the headers every e-mail carries."""

    host: str
    port: int
    security: str = "starttls"  # none | starttls | ssl
    user: str | None = None
    password: str | None = None
    from_address: str = DEFAULT_FROM
    reply_to: str | None = None
    list_unsubscribe: str | None = None  # URL and/or mailto:, e.g. "https://x/u?id={client_id}"
    oauth2_file: str | None = None  # yagmail's Gmail OAuth2 credentials file
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ConfigError(
                _("{setting} must be one of {choices}.").format(
                    setting="COMMS_SMTP_SECURITY", choices=", ".join(SECURITY_MODES)
                )
            )
        if not self.host:
            raise ConfigError(_("COMMS_SMTP_HOST is empty."))
        if not 0 < int(self.port) < 65536:
            raise ConfigError(_("COMMS_SMTP_PORT must be a port number from 1 to 65535."))
        if self.user and not self.password and not self.oauth2_file:
            raise ConfigError(_("COMMS_SMTP_USER is set but COMMS_SMTP_PASSWORD is missing."))
        parse_from(self.from_address)
        if self.reply_to:
            parse_from(self.reply_to, "COMMS_REPLY_TO")
        if _has_newline(self.list_unsubscribe):
            raise ConfigError(
                _("{setting} must be one line.").format(setting="COMMS_LIST_UNSUBSCRIBE")
            )

    @classmethod
    def from_settings(cls) -> SmtpConfig | None:
        """The configured relay, or None when COMMS_SMTP_HOST is not set."""
        host = setting("COMMS_SMTP_HOST", "smtp", "host")
        if not host:
            return None
        security = str(setting("COMMS_SMTP_SECURITY", "smtp", "security", "starttls")).lower()
        port = _int("COMMS_SMTP_PORT", "smtp", "port", DEFAULT_PORTS.get(security, 587), minimum=1)
        return cls(
            host=str(host),
            port=port,
            security=security,
            user=setting("COMMS_SMTP_USER", "smtp", "user"),
            password=setting("COMMS_SMTP_PASSWORD", "smtp", "password"),
            from_address=str(setting("COMMS_FROM", "smtp", "from", DEFAULT_FROM)),
            reply_to=setting("COMMS_REPLY_TO", "smtp", "reply_to"),
            list_unsubscribe=setting("COMMS_LIST_UNSUBSCRIBE", "smtp", "list_unsubscribe"),
            oauth2_file=setting("COMMS_SMTP_OAUTH2_FILE", "smtp", "oauth2_file"),
            timeout=_float("COMMS_SMTP_TIMEOUT", "smtp", "timeout", 30.0),
        )

    def describe(self) -> dict[str, Any]:
        """Everything but the password."""
        return {
            "backend": "smtp",
            "server": f"{self.host}:{self.port}",
            "security": self.security,
            "login": self.user or ("oauth2" if self.oauth2_file else "none"),
            "from": self.from_address,
            "reply_to": self.reply_to,
            "list_unsubscribe": self.list_unsubscribe,
        }


@dataclass(frozen=True)
class TwilioConfig:
    """Twilio account, sender (number or Messaging Service SID) and API base URL."""

    account_sid: str
    auth_token: str
    sms_from: str  # +420..., an alphanumeric sender, or MG... (Messaging Service SID)
    api_base: str = TWILIO_DEFAULT_BASE
    timeout: float = 30.0

    def __post_init__(self) -> None:
        for name, value in (
            ("TWILIO_ACCOUNT_SID", self.account_sid),
            ("TWILIO_AUTH_TOKEN", self.auth_token),
            ("COMMS_SMS_FROM", self.sms_from),
        ):
            if not value:
                raise ConfigError(
                    _("{setting} is missing: Twilio needs it to send SMS.").format(setting=name)
                )
        if not self.api_base.startswith(("http://", "https://")):
            raise ConfigError(_("COMMS_TWILIO_API_BASE must start with http:// or https://."))

    @property
    def uses_messaging_service(self) -> bool:
        return self.sms_from.startswith("MG")

    @classmethod
    def from_settings(cls) -> TwilioConfig | None:
        """The configured account, or None when none of its settings is present."""
        sid = setting("TWILIO_ACCOUNT_SID", "twilio", "account_sid")
        token = setting("TWILIO_AUTH_TOKEN", "twilio", "auth_token")
        sms_from = setting("COMMS_SMS_FROM", "twilio", "from")
        if not (sid or token or sms_from):
            return None
        return cls(
            account_sid=str(sid or ""),
            auth_token=str(token or ""),
            sms_from=str(sms_from or ""),
            api_base=str(
                setting("COMMS_TWILIO_API_BASE", "twilio", "api_base", TWILIO_DEFAULT_BASE)
            ).rstrip("/"),
            timeout=_float("COMMS_TWILIO_TIMEOUT", "twilio", "timeout", 30.0),
        )

    def describe(self) -> dict[str, Any]:
        """Everything but the auth token (the account SID is shortened)."""
        return {
            "backend": "twilio",
            "account": self.account_sid[:6] + "…",
            "from": self.sms_from,
            "messaging_service": self.uses_messaging_service,
            "api_base": self.api_base,
        }


IMAP_SECURITY = ("ssl", "starttls", "none")
IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}


def _public_url(raw: Any) -> str | None:
    """COMMS_PUBLIC_URL without its trailing slash; None when unset."""
    if not raw:
        return None
    url = str(raw).strip().rstrip("/")
    if _has_newline(url) or not url.startswith(("http://", "https://")) or " " in url:
        raise ConfigError(
            _("COMMS_PUBLIC_URL must be the app's base URL, starting with https:// (or http://).")
        )
    return url


@dataclass(frozen=True)
class ImapConfig:
    """The mailbox that receives bounces, complaints and mailto unsubscribes."""

    host: str
    user: str
    password: str = field(repr=False)
    port: int = 993
    security: str = "ssl"  # ssl | starttls | none
    folder: str = "INBOX"
    move_to: str | None = None  # processed mail is moved here (else flagged where it is)
    interval: float = 300.0  # seconds between the background reader's fetches

    def __post_init__(self) -> None:
        if self.security not in IMAP_SECURITY:
            raise ConfigError(
                _("{setting} must be one of {choices}.").format(
                    setting="COMMS_BOUNCE_IMAP_SECURITY", choices=", ".join(IMAP_SECURITY)
                )
            )
        if not self.user or not self.password:
            raise ConfigError(
                _(
                    "COMMS_BOUNCE_IMAP_HOST is set: COMMS_BOUNCE_IMAP_USER and"
                    " COMMS_BOUNCE_IMAP_PASSWORD are needed too."
                )
            )
        if not 0 < int(self.port) < 65536:
            raise ConfigError(_("COMMS_BOUNCE_IMAP_PORT must be a port number."))

    @classmethod
    def from_settings(cls) -> ImapConfig | None:
        """The bounce mailbox, or None when COMMS_BOUNCE_IMAP_HOST is not set."""
        host = setting("COMMS_BOUNCE_IMAP_HOST", "feedback", "imap_host")
        if not host:
            return None
        security = str(setting("COMMS_BOUNCE_IMAP_SECURITY", "feedback", "imap_security", "ssl"))
        security = security.lower()
        return cls(
            host=str(host),
            user=str(setting("COMMS_BOUNCE_IMAP_USER", "feedback", "imap_user", "")),
            password=str(setting("COMMS_BOUNCE_IMAP_PASSWORD", "feedback", "imap_password", "")),
            port=_int(
                "COMMS_BOUNCE_IMAP_PORT", "feedback", "imap_port", IMAP_PORTS.get(security, 993), 1
            ),
            security=security,
            folder=str(setting("COMMS_BOUNCE_IMAP_FOLDER", "feedback", "imap_folder", "INBOX")),
            move_to=setting("COMMS_BOUNCE_IMAP_MOVE_TO", "feedback", "imap_move_to"),
            interval=_float("COMMS_BOUNCE_IMAP_INTERVAL", "feedback", "imap_interval", 300.0),
        )

    def describe(self) -> dict[str, Any]:
        """Everything but the password."""
        return {
            "server": f"{self.host}:{self.port}",
            "security": self.security,
            "user": self.user,
            "folder": self.folder,
            "move_to": self.move_to,
        }


@dataclass(frozen=True)
class FeedbackConfig:
    """What closes the loop after sending: public URL, signing key, bounce address, limits.

    `unsubscribe_key` is a secret (configured, else the key file beside the
    database: comms.feedback.keys); it is never described.
    """

    public_url: str | None = None  # where recipients and Twilio reach the app
    unsubscribe_key: str | None = field(default=None, repr=False)
    bounce_address: str | None = None  # bounces@example.cz: VERP bounces+<id>-<sig>@...
    soft_bounce_limit: int = 3  # soft bounces in a row for one address count as a hard one
    imap: ImapConfig | None = None

    def __post_init__(self) -> None:
        if self.unsubscribe_key is not None and len(self.unsubscribe_key) < 16:
            raise ConfigError(_("COMMS_UNSUBSCRIBE_KEY must be at least 16 characters long."))
        if self.bounce_address:
            addr = parse_from(self.bounce_address, "COMMS_BOUNCE_ADDRESS")
            if addr.display_name or "+" in addr.username:
                raise ConfigError(
                    _(
                        "COMMS_BOUNCE_ADDRESS must be a plain address without '+' (comms adds"
                        " +<message>-<signature> to it)."
                    )
                )
        if self.soft_bounce_limit < 1:
            raise ConfigError(
                _("{setting} must be at least 1.").format(setting="COMMS_SOFT_BOUNCE_LIMIT")
            )

    @property
    def status_callback(self) -> str | None:
        """The URL Twilio reports each SMS's status to (None without a public URL)."""
        return f"{self.public_url}/hooks/twilio/status" if self.public_url else None

    @property
    def inbound_url(self) -> str | None:
        """The URL Twilio forwards replies to (set it on the number in Twilio's console)."""
        return f"{self.public_url}/hooks/twilio/inbound" if self.public_url else None

    @classmethod
    def from_settings(cls) -> FeedbackConfig:
        """COMMS_PUBLIC_URL, COMMS_UNSUBSCRIBE_KEY, COMMS_BOUNCE_ADDRESS, COMMS_SOFT_BOUNCE_LIMIT,
        COMMS_BOUNCE_IMAP_* (env, else [feedback] in secrets.toml)."""
        key = setting("COMMS_UNSUBSCRIBE_KEY", "feedback", "unsubscribe_key")
        bounce = setting("COMMS_BOUNCE_ADDRESS", "feedback", "bounce_address")
        return cls(
            public_url=_public_url(setting("COMMS_PUBLIC_URL", "feedback", "public_url")),
            unsubscribe_key=str(key) if key else None,
            bounce_address=str(bounce).strip() if bounce else None,
            soft_bounce_limit=_int(
                "COMMS_SOFT_BOUNCE_LIMIT", "feedback", "soft_bounce_limit", 3, 1
            ),
            imap=ImapConfig.from_settings(),
        )

    def describe(self) -> dict[str, Any]:
        """Everything but the key (only whether one is configured or the key file is used)."""
        return {
            "public_url": self.public_url,
            "unsubscribe_key": "configured" if self.unsubscribe_key else "key file",
            "bounce_address": self.bounce_address,
            "soft_bounce_limit": self.soft_bounce_limit,
            "imap": self.imap.describe() if self.imap else None,
            "status_callback": self.status_callback,
            "inbound_url": self.inbound_url,
        }


def outbox_dir() -> Path:
    """Where the outbox-folder backend writes: $COMMS_OUTBOX_DIR or data/outbox/."""
    return Path(os.environ.get("COMMS_OUTBOX_DIR") or ROOT / "data" / "outbox")


@dataclass(frozen=True)
class ChannelLimits:
    """Parallel connections and rate limit for one channel (0 = no limit)."""

    connections: int
    per_second: float = 0.0
    per_minute: float = 0.0


@dataclass(frozen=True)
class DispatchConfig:
    """Dispatcher settings: connections, rate limits, retries."""

    email: ChannelLimits
    sms: ChannelLimits
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    poll_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(
                _("{setting} must be at least 1.").format(setting="COMMS_MAX_ATTEMPTS")
            )
        for env, limits in (
            ("COMMS_SMTP_CONNECTIONS", self.email),
            ("COMMS_SMS_CONNECTIONS", self.sms),
        ):
            if limits.connections < 1:
                raise ConfigError(_("{setting} must be at least 1.").format(setting=env))

    def limits(self, channel: str) -> ChannelLimits:
        return self.email if channel == "email" else self.sms

    @classmethod
    def from_settings(cls) -> DispatchConfig:
        """COMMS_SMTP_CONNECTIONS (8), COMMS_SMS_CONNECTIONS (4), COMMS_{EMAIL,SMS}_RATE_PER_*."""
        return cls(
            email=ChannelLimits(
                connections=_int("COMMS_SMTP_CONNECTIONS", "sending", "smtp_connections", 8, 1),
                per_second=_float("COMMS_EMAIL_RATE_PER_SECOND", "sending", "email_per_second", 0),
                per_minute=_float("COMMS_EMAIL_RATE_PER_MINUTE", "sending", "email_per_minute", 0),
            ),
            sms=ChannelLimits(
                connections=_int("COMMS_SMS_CONNECTIONS", "sending", "sms_connections", 4, 1),
                per_second=_float("COMMS_SMS_RATE_PER_SECOND", "sending", "sms_per_second", 0),
                per_minute=_float("COMMS_SMS_RATE_PER_MINUTE", "sending", "sms_per_minute", 0),
            ),
            max_attempts=_int("COMMS_MAX_ATTEMPTS", "sending", "max_attempts", 5, 1),
            backoff_seconds=_float("COMMS_BACKOFF_SECONDS", "sending", "backoff_seconds", 2.0),
            poll_seconds=_float("COMMS_POLL_SECONDS", "sending", "poll_seconds", 5.0),
        )


def backend_name(channel: str) -> str:
    """'smtp' / 'twilio' when configured, else 'outbox' ($COMMS_<CHANNEL>_BACKEND=outbox forces it)."""
    forced = setting(f"COMMS_{channel.upper()}_BACKEND", "sending", f"{channel}_backend")
    if forced == "outbox":
        return "outbox"
    if channel == "email":
        return "smtp" if setting("COMMS_SMTP_HOST", "smtp", "host") else "outbox"
    if channel == "sms":
        configured = any(
            setting(env, "twilio", key)
            for env, key in (
                ("TWILIO_ACCOUNT_SID", "account_sid"),
                ("TWILIO_AUTH_TOKEN", "auth_token"),
                ("COMMS_SMS_FROM", "from"),
            )
        )
        return "twilio" if configured else "outbox"
    raise ValueError(f"unknown channel {channel!r}")


def is_demo_mode(channel: str | None = None) -> bool:
    """True when the channel (or, with None, any channel) writes to the outbox folder."""
    channels = (channel,) if channel else ("email", "sms")
    return any(backend_name(c) == "outbox" for c in channels)


def describe_backends() -> dict[str, dict[str, Any]]:
    """Per channel: the active backend and its non-secret settings (or the config error)."""
    out: dict[str, dict[str, Any]] = {}
    for channel in ("email", "sms"):
        name = backend_name(channel)
        try:
            if name == "smtp":
                info = SmtpConfig.from_settings().describe()  # type: ignore[union-attr]
            elif name == "twilio":
                info = TwilioConfig.from_settings().describe()  # type: ignore[union-attr]
            else:
                info = {"backend": "outbox", "folder": str(outbox_dir()), "demo": True}
            info["ok"] = True
        except ConfigError as exc:
            info = {"backend": name, "ok": False, "error": str(exc)}
        out[channel] = info
    try:
        d = DispatchConfig.from_settings()
        out["dispatch"] = {
            "email_connections": d.email.connections,
            "sms_connections": d.sms.connections,
            "email_rate": f"{d.email.per_second or '∞'}/s, {d.email.per_minute or '∞'}/min",
            "sms_rate": f"{d.sms.per_second or '∞'}/s, {d.sms.per_minute or '∞'}/min",
            "max_attempts": d.max_attempts,
            "backoff_seconds": d.backoff_seconds,
            "ok": True,
        }
    except ConfigError as exc:
        out["dispatch"] = {"ok": False, "error": str(exc)}
    return out
