"""The SMS counter: characters, encoding and segments, with a warning above the limit."""

from __future__ import annotations

import streamlit as st

from comms.i18n import _, ngettext
from comms.rules.sms import GSM7, SmsInfo, is_gsm7, max_segments, sms_info, to_gsm7


def ucs2_hint(text: str) -> str | None:
    """Why a text is UCS-2, naming its characters and what each would become in GSM-7.

    "ř → r" for a letter with diacritics, "… → ..." for a typographic mark, "😀 → ?"
    for a character with no GSM-7 form: the hint names the real cause, not always
    "diacritics".
    """
    odd = list(dict.fromkeys(c for c in text if not is_gsm7(c)))
    if not odd:
        return None
    shown = odd[:8]
    more = _(" and {n} more").format(n=len(odd) - len(shown)) if len(odd) > len(shown) else ""
    pairs = ", ".join(f"{c} → {to_gsm7(c) or _('(dropped)')}" for c in shown)
    lossy = [c for c in shown if to_gsm7(c) == "?"]
    tail = (
        "; "
        + ngettext("{chars} has no GSM-7 form", "{chars} have no GSM-7 form", len(lossy)).format(
            chars=" ".join(lossy)
        )
        if lossy
        else ""
    )
    return _(
        "UCS-2 (70 characters per segment) because of {chars}{more}. Replaced "
        "({pairs}{more}) it would be GSM-7: 160 characters per segment{tail}."
    ).format(chars=" ".join(shown), more=more, pairs=pairs, tail=tail)


def sms_counter(text: str, *, label: str = "") -> SmsInfo:
    """Draw the counter for one SMS text and return its figures."""
    info = sms_info(text or "")
    single, multi = (160, 153) if info.encoding == GSM7 else (70, 67)
    limit = single if info.segments <= 1 else multi * info.segments
    prefix = f"{label}: " if label else ""
    chars = ngettext("**{n}** character", "**{n}** characters", info.chars).format(n=info.chars)
    segments = ngettext("**{n}** segment", "**{n}** segments", info.segments).format(
        n=info.segments
    )
    units = _("septets") if info.encoding == GSM7 else _("units")
    st.caption(f"{prefix}{chars} · **{info.encoding}** · {segments} ({info.units}/{limit} {units})")
    hint = ucs2_hint(text) if info.encoding != GSM7 and text else None
    if hint:
        # Not naming a control: the Templates page has none, the send screens do.
        st.caption(hint)
    cap = max_segments()
    if info.segments > cap:
        advice = (
            _(
                "Each segment is billed as one SMS; shorten the text or replace the characters "
                "that make it UCS-2."
            )
            if hint
            else _("Each segment is billed as one SMS; shorten the text.")
        )
        st.warning(
            prefix
            + _("{n} segments: more than {cap} (COMMS_SMS_MAX_SEGMENTS).").format(
                n=info.segments, cap=cap
            )
            + " "
            + advice,
            icon=":material/warning:",
        )
    return info
