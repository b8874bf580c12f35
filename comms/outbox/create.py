"""The only code that creates `messages` rows.

SOURCES says where a message came from: a bulk send, a client's detail page,
the command line, or a test message.
"""

from __future__ import annotations

SOURCES: tuple[str, ...] = ("bulk", "client detail", "cli", "test")
SOURCE_BULK, SOURCE_DETAIL, SOURCE_CLI, SOURCE_TEST = SOURCES
