"""The sentences of a refused move, in the viewer's language (comms.i18n).

A refusal is raised to the person who asked for the move (a button, the CLI,
the Desk); it is never stored, so it is translated when raised. Statuses and
verbs are English codes here and translated into the sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

from comms import i18n
from comms.errors import InvalidTransition, NotFound
from comms.i18n import _, ngettext

SHOWN = 10  # ids named in a refusal


def more(n: int) -> str:
    """' and 5 more' after the first SHOWN of n ids (empty when all of them are named)."""
    return _(" and {n} more").format(n=i18n.number(n - SHOWN)) if n > SHOWN else ""


def listed(ids: Sequence[int]) -> str:
    """'3, 4, 5' (the first SHOWN ids, then how many more)."""
    return ", ".join(map(str, ids[:SHOWN])) + more(len(ids))


def statuses(codes: Sequence[str]) -> str:
    """Status codes as the viewer reads them, 'draft, queued'."""
    return ", ".join(_(c) for c in codes)


# English says "message 3, 4" for one id or several (so its singular and plural are one
# text); Czech declines the noun and the verb.


def no_message(ids: str, n: int) -> NotFound:
    """n message ids (`ids`, as listed) that do not exist."""
    return NotFound(
        ngettext("No message with id {ids}.", "No message with id {ids}.", n).format(ids=ids)
    )


def being_sent(verb: str, ids: str, n: int) -> InvalidTransition:
    """A move (`verb`: an English code of _VERBS) refused for n messages being sent now."""
    return InvalidTransition(
        ngettext(
            "Cannot {verb} message {ids}: it is being sent right now. Nothing was changed.",
            "Cannot {verb} message {ids}: it is being sent right now. Nothing was changed.",
            n,
        ).format(verb=_(verb), ids=ids)
    )


def wrong_status(verb: str, shown: str, n: int, allowed: str, to: str) -> InvalidTransition:
    """A move refused for n messages (`shown`: '14 (sent), ...') not in an `allowed` status."""
    return InvalidTransition(
        ngettext(
            "Cannot {verb} message {ids}: only {allowed} messages can become {target}.",
            "Cannot {verb} message {ids}: only {allowed} messages can become {target}.",
            n,
        ).format(verb=_(verb), ids=shown, allowed=allowed, target=_(to))
    )


def with_status(pairs: Sequence[tuple[int, str]]) -> str:
    """'14 (sent), 15 (failed)': ids with their statuses as the viewer reads them."""
    return ", ".join(f"{i} ({_(s)})" for i, s in pairs)
