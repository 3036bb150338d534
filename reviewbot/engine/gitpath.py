"""Git's C-style quoted path names, turned back into the names GitHub shows.

git quotes a path that holds a double quote, a backslash, a control character or (with the
default ``core.quotePath``) any byte above 0x7f: ``"a/docs/gu\\303\\255a.md"`` is the UTF-8
name ``a/docs/guía.md``. See git's ``quote_c_style`` and the ``core.quotePath`` docs.
"""

_SIMPLE_ESCAPES = {
    "a": 0x07,
    "b": 0x08,
    "t": 0x09,
    "n": 0x0A,
    "v": 0x0B,
    "f": 0x0C,
    "r": 0x0D,
    '"': 0x22,
    "\\": 0x5C,
}
# Only these make an octal escape; str.isdigit() would also accept "8", "9" and non-ASCII digits.
_OCTAL_DIGITS = frozenset("01234567")


def unquote_c_style(quoted: str) -> str:
    """Return the path inside git's double quotes, with escapes decoded as UTF-8.

    A name that is not quoted is returned unchanged. Bytes that are not UTF-8 become U+FFFD,
    so a strange name still reads, rather than failing the whole diff.
    """
    if len(quoted) < 2 or not (quoted.startswith('"') and quoted.endswith('"')):
        return quoted
    body = quoted[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out += char.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif len(digits := body[i + 1 : i + 4]) == 3 and all(d in _OCTAL_DIGITS for d in digits):
            out.append(int(digits, 8) & 0xFF)
            i += 4
        else:
            # Not an escape git writes; keep it as it stands.
            out += char.encode("utf-8")
            i += 1
    return out.decode("utf-8", errors="replace")


def strip_prefix(path: str) -> str:
    """Drop git's ``a/`` or ``b/`` side prefix from a path name."""
    if path.startswith(("a/", "b/")):
        return path[2:]
    return path
