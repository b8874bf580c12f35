"""E-mail and phone checks for a whole client list: the library's answers, much less work per row.

comms.rules.validation's check_email / check_phone call email-validator and
phonenumbers once per value, about 30 us each. A client list repeats a few
dozen domains and a few hundred number prefixes, so most of that work is the
same for many rows. The answers stay exactly the libraries' (a test compares
every row with email-validator and phonenumbers called directly):

E1  An ASCII address without quotes or angle brackets is split at its first @
    exactly as email-validator's split_email would (that function only differs
    for quotes, brackets, combining characters and display names). Then
    validate_email's own steps run in its own order, with its own functions and
    defaults: the local part checked per row (validate_email_local_part), the
    domain once per distinct domain (validate_email_domain_name, its result or
    its error remembered), the lengths per row (validate_email_length). Any
    other address goes to check_email itself.

P1  A number written as digits and spaces, with an optional leading + (00 read
    as +, as check_phone does), parses as its digits do: phonenumbers keeps only
    digits before any pattern is applied, and the spaces only matter to the
    viability test for fewer than three digits. Anything else goes to check_phone.

P2  Every decision phonenumbers takes on such digits is a regular expression or
    a length. Each pattern it matches whole (the general description and each
    number type's, of every region the country code may mean) becomes an
    automaton over the digits; for a number, the shortest prefix after which
    every such pattern, started wherever the library may start it (after the
    country code and a national prefix, or at the start), matches all endings
    of the remaining length or none, and which is also longer than anything the
    patterns matched at the start (international and national prefixes,
    leading digits) can read, decides the library's answer for every number of
    that length and prefix. The first number of such a class is checked by
    check_phone; the others get its kind, and its E.164 with their own ending,
    which the library copies unchanged (checked on that first number: the
    ending is there, and the national number's leading zeros end before it).
    A region whose national prefix is rewritten (Argentina, Brazil, some NANP
    islands), or whose patterns use anchors, is left to the library. An invalid
    number is always checked on its own, so the error text is the library's
    for that very input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from comms.rules.validation import (
    INVALID_EMAIL,
    NO_EMAIL,
    EmailCheck,
    PhoneCheck,
    check_email,
    check_phone,
)

# -- e-mail (E1) --------------------------------------------------------------------------------


class EmailChecks:
    """check_email for many addresses; the domain part validated once per domain (E1)."""

    def __init__(self) -> None:
        import email_validator as ev
        from email_validator import syntax
        from email_validator.exceptions import EmailNotValidError
        from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, EMAIL_MAX_LENGTH
        from email_validator.types import ValidatedEmail

        self._ev = ev
        self._syntax = syntax
        self._error = EmailNotValidError
        self._mailbox_names = CASE_INSENSITIVE_MAILBOX_NAMES
        self._max_length = EMAIL_MAX_LENGTH
        self._validated = ValidatedEmail
        self._domains: dict[str, tuple[dict[str, Any] | None, str | None]] = {}

    def check(self, raw: str) -> EmailCheck:
        return EmailCheck(*self.answer(raw))

    def answer(self, raw: str) -> tuple[bool, str, str | None]:
        """check_email's answer as (ok, address, error)."""
        text = (raw or "").strip()
        if not text:
            return (False, "", NO_EMAIL)
        at = text.find("@")
        if (
            at < 0
            or not text.isascii()
            or '"' in text
            or "<" in text
            or "\r" in text
            or "\n" in text
            or text.startswith("[", at + 1)  # a domain literal
        ):
            r = check_email(raw)  # E1: what split_email (or a literal) treats specially
            return (r.ok, r.address, r.error)
        try:
            return (True, self._validate(text[:at], text[at + 1 :]), None)
        except self._error as exc:
            return (False, text, f"{INVALID_EMAIL}: {exc}")
        except (TypeError, AttributeError, KeyError):  # email-validator's internals changed
            r = check_email(raw)
            return (r.ok, r.address, r.error)

    def _domain(self, domain: str) -> dict[str, Any]:
        known = self._domains.get(domain)
        if known is None:
            try:
                info = self._syntax.validate_email_domain_name(
                    domain,
                    test_environment=self._ev.TEST_ENVIRONMENT,
                    globally_deliverable=self._ev.GLOBALLY_DELIVERABLE,
                )
                known = (info, None)
            except self._error as exc:
                known = (None, str(exc))
            self._domains[domain] = known
        info, error = known
        if info is None:
            raise self._syntax.EmailSyntaxError(error)
        return info

    def _validate(self, local: str, domain: str) -> str:
        """validate_email's steps for an unquoted ASCII address, in its order; the normalized form."""
        ev, syntax = self._ev, self._syntax
        info = syntax.validate_email_local_part(
            local,
            allow_smtputf8=ev.ALLOW_SMTPUTF8,
            allow_empty_local=ev.ALLOW_EMPTY_LOCAL,
            quoted_local_part=False,
            strict=ev.STRICT,
        )
        # NFC normalization leaves ASCII unchanged, so validate_email's second pass is moot.
        local_part, ascii_local = info["local_part"], info["ascii_local_part"]
        if (
            ascii_local is not None
            and ascii_local.lower() in self._mailbox_names
            and local_part is not None
        ):
            ascii_local, local_part = ascii_local.lower(), local_part.lower()
        if len(domain) == 0:
            raise syntax.EmailSyntaxError("There must be something after the @-sign.")
        dom = self._domain(domain)
        normalized = local_part + "@" + dom["domain"]
        # validate_email_length raises only when a form is longer than EMAIL_MAX_LENGTH in
        # UTF-8 (the original is ASCII here): only then is it asked, for its exact words.
        original = local + "@" + domain
        ascii_form = (ascii_local or local_part or "") + "@" + dom["ascii_domain"]
        if max(len(original), len(normalized.encode()), len(ascii_form)) > self._max_length:
            ret = self._validated()
            ret.original, ret.display_name, ret.smtputf8 = original, None, info["smtputf8"]
            ret.local_part, ret.ascii_local_part = local_part, ascii_local
            ret.domain, ret.ascii_domain = dom["domain"], dom["ascii_domain"]
            ret.normalized = normalized
            syntax.validate_email_length(ret)
        return normalized


# -- phones (P1, P2) ----------------------------------------------------------------------------

_SIMPLE_NUMBER = re.compile(r"\+?[0-9][0-9 ]{0,39}")  # P1
_DIGITS = range(10)
_ALL = (1 << 10) - 1  # a set of digits as a 10-bit mask


class _Unsupported(Exception):
    """A pattern construct the analysis does not model: no shortcut for that region."""


def _parse_regex(pattern: str) -> Any:
    import re._parser as sre_parse  # Python 3.11+

    return sre_parse.parse(pattern)


def _digit_mask(items: list) -> int:
    """The digits a character set accepts."""
    from re._constants import CATEGORY, CATEGORY_DIGIT, LITERAL, NEGATE, RANGE

    mask, negate = 0, False
    for op, av in items:
        if op is NEGATE:
            negate = True
        elif op is CATEGORY and av is CATEGORY_DIGIT:
            mask = _ALL
        elif op is RANGE:
            for c in range(max(av[0], 48), min(av[1], 57) + 1):
                mask |= 1 << (c - 48)
        elif op is LITERAL:
            if 48 <= av <= 57:
                mask |= 1 << (av - 48)
        else:
            raise _Unsupported(f"set item {op}")
    return _ALL & ~mask if negate else mask


class _Automaton:
    """A pattern as a nondeterministic automaton over the digits 0-9 (P2): whether it matches a
    whole digit string, and whether a prefix already decides that for every ending."""

    def __init__(self, pattern: str) -> None:
        self._edges: list[list[tuple[int, int]]] = []  # state -> [(digit mask, state)]
        self._free: list[list[int]] = []  # state -> states reached without a digit
        start = self._state()
        self._accept = self._build(_parse_regex(pattern), start)
        self._closure = [self._close(s) for s in range(len(self._edges))]
        self.start = self._closure[start]
        self._steps: dict[tuple[frozenset[int], int], frozenset[int]] = {}
        self._decided: dict[tuple[frozenset[int], int], bool] = {}

    def _state(self) -> int:
        self._edges.append([])
        self._free.append([])
        return len(self._edges) - 1

    def _build(self, items: Any, at: int) -> int:
        from re._constants import (
            ANY,
            BRANCH,
            IN,
            LITERAL,
            MAX_REPEAT,
            MAXREPEAT,
            MIN_REPEAT,
            SUBPATTERN,
        )

        for op, av in items:
            if op in (LITERAL, IN, ANY):
                if op is LITERAL:
                    mask = 1 << (av - 48) if 48 <= av <= 57 else 0
                else:
                    mask = _ALL if op is ANY else _digit_mask(av)
                nxt = self._state()
                self._edges[at].append((mask, nxt))
                at = nxt
            elif op is SUBPATTERN:
                at = self._build(av[-1], at)
            elif op is BRANCH:
                end = self._state()
                for branch in av[1]:
                    self._free[self._build(branch, at)].append(end)
                at = end
            elif op in (MAX_REPEAT, MIN_REPEAT):
                lo, hi, sub = av
                for _ in range(lo):
                    at = self._build(sub, at)
                if hi == MAXREPEAT:
                    loop = self._state()
                    self._free[at].append(loop)
                    self._free[self._build(sub, loop)].append(loop)
                    at = loop
                else:
                    end = self._state()
                    for _ in range(hi - lo):
                        self._free[at].append(end)
                        at = self._build(sub, at)
                    self._free[at].append(end)
                    at = end
            else:
                raise _Unsupported(f"operator {op}")
        return at

    def _close(self, state: int) -> frozenset[int]:
        seen, todo = {state}, [state]
        while todo:
            for nxt in self._free[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def step(self, states: frozenset[int], digit: int) -> frozenset[int]:
        key = (states, digit)
        out = self._steps.get(key)
        if out is None:
            bit = 1 << digit
            reached: set[int] = set()
            for s in states:
                for mask, nxt in self._edges[s]:
                    if mask & bit:
                        reached |= self._closure[nxt]
            out = self._steps[key] = frozenset(reached)
        return out

    def run(self, digits: str, states: frozenset[int] | None = None) -> frozenset[int]:
        states = self.start if states is None else states
        for ch in digits:
            states = self.step(states, ord(ch) - 48)
        return states

    def decided(self, states: frozenset[int], left: int) -> bool:
        """Whether every string of `left` more digits is matched, or none is."""
        key = (states, left)
        known = self._decided.get(key)
        if known is None:
            frontier = {states}
            for _ in range(left):
                frontier = {self.step(x, d) for x in frontier for d in _DIGITS}
            accepted = {self._accept in x for x in frontier}
            known = self._decided[key] = len(accepted) == 1
        return known


def _max_width(pattern: str | None) -> int:
    """The most characters a match of `pattern` at the start of a string can read."""
    if not pattern:
        return 0
    from re._constants import MAXREPEAT

    _Automaton(pattern)  # raises _Unsupported for anchors, lookarounds, back-references ...
    width = _parse_regex(pattern).getwidth()[1]
    if width >= MAXREPEAT:
        raise _Unsupported("unbounded prefix")
    return width


# The number descriptions that parse, is_valid_number and number_type match whole numbers
# against (phonenumbers' _number_type_helper and the general description); the others
# (emergency, short codes ...) describe short numbers those functions never test.
_DESCS = (
    "general_desc",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


@dataclass
class _Region:
    """A region's patterns, as P2 needs them; None where a construct is not modelled."""

    automata: list[_Automaton] | None  # the number descriptions (fully matched)
    leading_digits: int | None  # characters its leading-digits pattern can read
    national_prefix: int | None  # characters its national prefix can read; None: rewritten
    prefix_pattern: re.Pattern[str] | None  # its national prefix, as parse matches it
    idd: int | None  # characters its international prefix can read
    idd_pattern: re.Pattern[str] | None


def _supported(make: Any) -> Any:
    """make(), or None when the analysis cannot model it (the library answers those numbers).

    Anything that goes wrong here (a construct not modelled, or Python's regex internals,
    re._parser, changed) only means no shortcut: never a different answer.
    """
    try:
        return make()
    except Exception:
        return None


@cache
def _region(region: str) -> _Region | None:
    """A region's patterns as automata, built once per process (they are pure functions of the
    library's metadata; their memos of steps and decisions grow with use)."""
    from phonenumbers.phonemetadata import PhoneMetadata

    m = PhoneMetadata.metadata_for_region(region, None)
    if m is None:
        return None
    patterns = [getattr(getattr(m, name, None), "national_number_pattern", None) for name in _DESCS]
    np = m.national_prefix_for_parsing
    # A rewritten national prefix (m.national_prefix_transform_rule) is not modelled.
    np_width = None if m.national_prefix_transform_rule else _supported(lambda: _max_width(np))
    return _Region(
        automata=_supported(lambda: [_Automaton(p) for p in patterns if p]),
        leading_digits=_supported(lambda: _max_width(m.leading_digits)),
        national_prefix=np_width,
        prefix_pattern=re.compile(np) if np else None,
        idd=_supported(lambda: _max_width(m.international_prefix)),
        idd_pattern=re.compile(m.international_prefix) if m.international_prefix else None,
    )


@dataclass
class _Plan:
    """For numbers of one country code and length: whose patterns the library reads (P2)."""

    plus: bool
    cc: str  # the country code's digits
    automata: list[_Automaton]  # fully matched: every region of the country code
    prefixes: list[tuple[re.Pattern[str], int]]  # national prefixes, with what they can read
    leading_digits: int  # the most a leading-digits pattern of those regions can read
    idd: tuple[re.Pattern[str] | None, int]  # the default region's (a number without +)

    def offsets(self, digits: str) -> tuple[list[int], int]:
        """Where, in this number, the library may start a whole match, and how many leading
        digits its matches at the start read: both the same for every number with those
        leading digits, since each national prefix match below reads no further."""
        starts, reads = set(), 3
        todo = [len(self.cc)] if self.plus else [0]
        if not self.plus and digits.startswith(self.cc):
            todo.append(len(self.cc))  # a national number that begins with the country code
        idd, idd_width = self.idd
        if not self.plus and idd is not None:
            reads = max(reads, idd_width + 1)  # the IDD, and the digit after it
        while todo:
            start = todo.pop()
            if start in starts:
                continue
            starts.add(start)
            for pattern, width in self.prefixes:
                reads = max(reads, start + width)
                m = pattern.match(digits, start)
                if m and m.end() > start:
                    todo.append(m.end())  # stripped, then matched (and stripped) again
        reads = max(reads, max(starts) + self.leading_digits)
        return sorted(starts), reads


# The one invalid answer a class may give: the number parsed, so P2 covers every decision.
_NOT_VALID = "invalid phone: not a valid number"
# Valid numbers of one length and first digits whose prefix never decided the answer: after
# this many the analysis stops for them (each is still checked by the library).
_MAX_MISSES = 20


@dataclass
class PhoneChecks:
    """check_phone for many numbers in one default region (P1, P2)."""

    region: str
    # (has +, digits) -> class prefix -> (True, E.164 before the ending, kind) | (False, error)
    _classes: dict[tuple[bool, int], dict[str, tuple]] = field(default_factory=dict)
    # (has +, digits) -> first three digits -> the prefix lengths of its classes
    _lengths: dict[tuple[bool, int], dict[str, list[int]]] = field(default_factory=dict)
    _plans: dict[tuple[bool, int, str], _Plan | None] = field(default_factory=dict)
    _misses: dict[tuple[bool, int, str], int] = field(default_factory=dict)

    def check(self, raw: str) -> PhoneCheck:
        return PhoneCheck(*self.answer(raw))

    def answer(self, raw: str) -> tuple[bool, str, str, str | None]:
        """check_phone's answer as (ok, e164, kind, error)."""
        text = raw.strip() if raw else ""
        if text[:2] == "00":
            text = "+" + text[2:]  # as check_phone does
        if not _SIMPLE_NUMBER.fullmatch(text):
            return self._library(raw)
        plus = text[:1] == "+"
        digits = (text[1:] if plus else text).replace(" ", "")
        n = len(digits)
        if n < 3:
            return self._library(raw)  # P1: spaces matter to viability here
        shape = (plus, n)
        classes = self._classes.get(shape)
        if classes is not None:
            for k in self._lengths[shape].get(digits[:3], ()):
                known = classes.get(digits[:k])
                if known is not None:
                    if known[0]:
                        return (True, known[1] + digits[k:], known[2], None)
                    return (False, text, "invalid", known[1])
        result = self._library(raw)
        head = (plus, n, digits[:3])
        # A valid answer, or "not a valid number" (parsed, so every decision was P2's).
        if (result[0] or result[3] == _NOT_VALID) and self._misses.get(head, 0) < _MAX_MISSES:
            k = self._class_length(plus, digits, result[1] if result[0] else None)
            if not k:
                self._misses[head] = self._misses.get(head, 0) + 1
            else:
                known = (
                    (True, result[1][: len(result[1]) - (n - k)], result[2])
                    if result[0]
                    else (False, result[3])
                )
                self._classes.setdefault(shape, {})[digits[:k]] = known
                lengths = self._lengths.setdefault(shape, {}).setdefault(digits[:3], [])
                if k not in lengths:
                    lengths.append(k)
        return result

    def _library(self, raw: str) -> tuple[bool, str, str, str | None]:
        r = check_phone(raw, self.region)
        return (r.ok, r.e164, r.kind, r.error)

    def _class_length(self, plus: bool, digits: str, e164: str | None) -> int:
        """The shortest prefix of `digits` that decides the library's answer for every number
        of this length (0 for none): P2's conditions, then, for a valid number (its E.164
        given), the copied ending."""
        plan = self._plan(plus, digits)
        if plan is None:
            return 0
        idd = plan.idd[0]
        if not plus and idd is not None and idd.match(digits):
            return 0  # an international prefix: another country's patterns apply
        n = len(digits)
        offsets, reads = plan.offsets(digits)
        pairs = [(a, o) for a in plan.automata for o in offsets]
        runs = [[a.start] for a, _ in pairs]
        for k in range(1, n):
            for (a, o), states in zip(pairs, runs, strict=True):
                if k > o:
                    states.append(a.step(states[-1], ord(digits[k - 1]) - 48))
            if k < reads:
                continue
            if all(
                a.decided(states[-1] if k > o else a.start, n - max(k, o))
                for (a, o), states in zip(pairs, runs, strict=True)
            ):
                return k if e164 is None or self._copies_ending(e164, digits, n - k) else 0
        return 0

    @staticmethod
    def _copies_ending(e164: str, digits: str, left: int) -> bool:
        """Whether the library copied the number's last digits into its E.164 unchanged, and
        the national number's leading zeros end before them (P2)."""
        from phonenumbers.phonenumberutil import _extract_country_code

        if not e164.endswith(digits[len(digits) - left :]):
            return False
        cc, national = _extract_country_code(e164[1:])
        return cc != 0 and national[: len(national) - left].strip("0") != ""

    def _plan(self, plus: bool, digits: str) -> _Plan | None:
        key = (plus, len(digits), digits[:3])
        if key not in self._plans:
            self._plans[key] = self._work_out_plan(plus, digits)
        return self._plans[key]

    def _work_out_plan(self, plus: bool, digits: str) -> _Plan | None:
        from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
        from phonenumbers.phonenumberutil import (
            _extract_country_code,
            country_code_for_region,
            region_code_for_country_code,
        )

        cc = _extract_country_code(digits)[0] if plus else country_code_for_region(self.region)
        codes = list(COUNTRY_CODE_TO_REGION_CODE.get(cc, ()))
        if cc == 0 or not codes or "001" in codes:
            return None  # no country, or non-geographic numbers: left to the library
        # Whose patterns parse, is_valid_number and number_type read: every region of the
        # country code (which one the number is, and its type); the national prefix of the
        # country's main region, and for a number without + the default region's too, with
        # the default region's international prefix.
        typed = [self._region(c) for c in codes]
        prefixed = [self._region(region_code_for_country_code(cc))]
        if not plus:
            prefixed.append(self._region(self.region))
        if (
            any(r is None or r.automata is None or r.leading_digits is None for r in typed)
            or any(r is None or r.national_prefix is None for r in prefixed)
            or (not plus and prefixed[-1].idd is None)
        ):
            return None
        default = prefixed[-1]
        return _Plan(
            plus=plus,
            cc=str(cc),
            automata=[a for r in typed for a in r.automata],
            prefixes=[(r.prefix_pattern, r.national_prefix) for r in prefixed if r.prefix_pattern],
            leading_digits=max(r.leading_digits for r in typed),
            idd=(default.idd_pattern, default.idd) if not plus else (None, 0),
        )

    def _region(self, code: str) -> _Region | None:
        return _region(code)


def check_values(batches: dict[str, list[str]], region: str) -> dict[str, list]:
    """check_email / check_phone's answers over {'email': [...], 'phone': [...]} (E1, P1, P2)."""
    out: dict[str, list] = {}
    if "email" in batches:
        emails = EmailChecks()
        out["email"] = [emails.check(v) for v in batches["email"]]
    if "phone" in batches:
        phones = PhoneChecks(region)
        out["phone"] = [phones.check(v) for v in batches["phone"]]
    return out


def email_answers(values: list[str]) -> list[tuple[bool, str, str | None]]:
    """check_email's answers as (ok, address, error) tuples, for many values (E1)."""
    checks = EmailChecks()
    return [checks.answer(v) for v in values]


# -- phones beside the import: a worker process ---------------------------------------------------

# Below this many numbers a worker costs more (its start, about 0.15 s) than it saves.
PARALLEL_MIN_VALUES = 20_000

# The worker is a fresh interpreter that imports only this module (the comms.clients package
# loads nothing on import): multiprocessing's spawn would re-run the parent's __main__, which
# in Streamlit (and AppTest) is a page script, and fork is unsafe in the app's threaded process.
_WORKER = """
import gc, json, sys
gc.disable()  # many small objects, no cycles: see comms.clients.importing
from comms.clients.checking import PhoneChecks
job = json.load(sys.stdin)
checks = PhoneChecks(job["region"])
# One flat list (ok, e164, kind, error, ok, ...) in one write: parsed several times faster.
sys.stdout.write(json.dumps([x for v in job["phone"] for x in checks.answer(v)]))
"""


class PhonesBeside:
    """The phone checks of one import, done by a worker process while this one goes on.

    `start` hands the numbers over and returns at once; `results` waits for them. If the
    worker cannot start or fails, the numbers are checked here instead: the answers never
    depend on the worker (the same PhoneChecks runs in both places).
    """

    def __init__(self, values: list[str], region: str) -> None:
        self.values, self.region = values, region
        self._proc: Any = None
        if len(values) >= PARALLEL_MIN_VALUES:
            import json
            import subprocess
            import sys
            import threading

            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _WORKER],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:
                self._proc = None
                return
            payload = json.dumps({"region": region, "phone": values}).encode()
            # Written from a thread: the pipe holds 64 KB, the worker reads it all first.
            self._writer = threading.Thread(target=self._send, args=(payload,), daemon=True)
            self._writer.start()

    def _send(self, payload: bytes) -> None:
        try:
            self._proc.stdin.write(payload)
            self._proc.stdin.close()
        except OSError:
            pass  # the worker died: results() checks here

    def results(self) -> list[tuple[bool, str, str, str | None]]:
        """check_phone's answer for each value, in order, as (ok, e164, kind, error)."""
        if self._proc is not None:
            import json

            try:
                self._writer.join()  # the worker reads every number before it answers
                out = self._proc.stdout.read()
                self._proc.stdout.close()
                if self._proc.wait() == 0:
                    flat = json.loads(out)
                    if len(flat) == 4 * len(self.values):
                        fields = iter(flat)
                        return list(zip(fields, fields, fields, fields, strict=True))
            except (OSError, ValueError):
                pass
        checks = PhoneChecks(self.region)
        return [checks.answer(v) for v in self.values]
