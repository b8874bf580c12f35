"""Text normalisation rules shared by import, search and samples.

`fold` is the one accent- and case-insensitive form of text: the header
synonyms of an uploaded list are compared folded, a directory search term is
folded before it meets `fold_sql` of the stored columns, and the sample
generator builds e-mail addresses from folded names. The Python and SQL forms
give the same result for every character DuckDB knows, except that Python
lowercases a word-final capital sigma to 'ς' where DuckDB gives 'σ'.
"""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lowercase without accents: 'Šťastná Žaneta' -> 'stastna zaneta' ('ł', 'ß' stay)."""
    # Canonical decomposition only (NFD, not NFKD): DuckDB's strip_accents keeps
    # ligatures and superscripts, so folding them here would make a search term
    # that can never match its own text.
    decomposed = unicodedata.normalize("NFD", str(text).lower())
    bare = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M"))
    return unicodedata.normalize("NFC", bare)  # Hangul syllables decompose into letters


def fold_sql(expr: str) -> str:
    """`fold` as DuckDB SQL over a text expression."""
    return f"strip_accents(lower({expr}))"
