"""The SMS counter: characters, encoding and segments, with a warning above the limit."""

from __future__ import annotations

import streamlit as st

from comms.rules.sms import GSM7, SmsInfo, is_gsm7, max_segments, sms_info


def sms_counter(text: str, *, label: str = "") -> SmsInfo:
    """Draw the counter for one SMS text and return its figures."""
    info = sms_info(text or "")
    single, multi = (160, 153) if info.encoding == GSM7 else (70, 67)
    limit = single if info.segments <= 1 else multi * info.segments
    prefix = f"{label}: " if label else ""
    st.caption(
        f"{prefix}**{info.chars}** characters · **{info.encoding}** · "
        f"**{info.segments}** segment{'s' if info.segments != 1 else ''} "
        f"({info.units}/{limit} {'septets' if info.encoding == GSM7 else 'units'})"
    )
    if info.encoding != GSM7 and text:
        odd = sorted({c for c in text if not is_gsm7(c)})[:12]
        st.caption(
            "UCS-2 because of: "
            + " ".join(repr(c)[1:-1] for c in odd)
            # Not naming a control: the Templates page has none, the send screens do.
            + " — without diacritics (ř → r) it would be GSM-7: 160 characters per segment."
        )
    cap = max_segments()
    if info.segments > cap:
        st.warning(
            f"{prefix}{info.segments} segments: more than {cap} (COMMS_SMS_MAX_SEGMENTS). "
            "Each segment is billed as one SMS; shorten the text or replace diacritics.",
            icon=":material/warning:",
        )
    return info
