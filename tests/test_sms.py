import pytest

from comms.rules.sms import GSM7, UCS2, is_gsm7, max_segments, sms_info, to_gsm7


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", GSM7, 0, 0),
        ("a" * 160, GSM7, 160, 1),
        ("a" * 161, GSM7, 161, 2),
        ("a" * 306, GSM7, 306, 2),
        ("a" * 307, GSM7, 307, 3),
        ("ý" * 70, UCS2, 70, 1),
        ("ý" * 71, UCS2, 71, 2),
        ("ý" * 134, UCS2, 134, 2),
        ("ý" * 135, UCS2, 135, 3),
        ("€", GSM7, 2, 1),
        ("a" * 158 + "€", GSM7, 160, 1),
        ("a" * 159 + "€", GSM7, 161, 2),
        ("^{}\\[~]|", GSM7, 16, 1),
        ("😀", UCS2, 2, 1),
        ("a" * 68 + "😀", UCS2, 70, 1),
        ("a" * 69 + "😀", UCS2, 71, 2),
        ("éèàüñÄÖÑÜß", GSM7, 10, 1),
        ("Příliš žluťoučký kůň", UCS2, 20, 1),
    ],
)
def test_segment_table(text, encoding, units, segments):
    info = sms_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    assert info.chars == len(text)


def test_extension_character_is_never_split_across_segments():
    # 152 septets then '€' (2): the escape pair must move to segment 2 whole,
    # so segment 1 holds 152 and the text needs 2 segments of 153, not 1 + overflow.
    assert sms_info("a" * 152 + "€" + "a" * 152).segments == 3
    # Without the split rule 152 + 2 + 152 = 306 would fit two segments.
    assert sms_info("a" * 152 + "a" + "a" * 152 + "a").segments == 2


def test_surrogate_pair_is_never_split():
    # 66 units then an emoji: it cannot take the 67th unit alone.
    assert sms_info("ý" * 66 + "😀" + "ý" * 66).segments == 3
    assert sms_info("ý" * 134).segments == 2


def test_describe_and_per_segment():
    info = sms_info("a" * 200)
    assert info.describe() == "200 characters · GSM-7 · 2 segments"
    assert info.per_segment == 153
    assert sms_info("hi").per_segment == 160


def test_czech_transliteration_fits_gsm7():
    czech = "Příliš žluťoučký kůň úpěl ďábelské ódy – „Dobrý den“, řekl Čapek… ŘŮŽE"
    out = to_gsm7(czech)
    assert out == 'Prilis zlutoucky kun upel dabelské ody - "Dobry den", rekl Capek... RUZE'
    assert is_gsm7(out)
    assert sms_info(out).encoding == GSM7


def test_transliteration_keeps_gsm7_letters_and_marks_the_rest():
    assert to_gsm7("é à ü ñ Ä ß ¿") == "é à ü ñ Ä ß ¿"
    assert to_gsm7("ç") == "Ç"
    assert to_gsm7("ﬁ") == "fi"
    assert to_gsm7("hi 😀") == "hi ?"
    # Decomposed input is composed first.
    assert to_gsm7("r\u030c") == "r"


def test_long_czech_sms_fits_one_segment_after_transliteration():
    text = ("Dobrý den, paní Nováková, Vaše objednávka č. 123 je připravena k vyzvednutí. " * 2)[
        :158
    ]
    assert sms_info(text).segments > 1
    assert sms_info(to_gsm7(text)).segments == 1


def test_max_segments_setting(monkeypatch):
    monkeypatch.delenv("COMMS_SMS_MAX_SEGMENTS", raising=False)
    monkeypatch.setenv("COMMS_SECRETS", "/nonexistent.toml")
    assert max_segments() == 3
    monkeypatch.setenv("COMMS_SMS_MAX_SEGMENTS", "5")
    assert max_segments() == 5
