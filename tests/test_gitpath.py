"""Git's C-style quoted path names decode back to the names GitHub shows."""

import pytest

from reviewbot.engine.gitpath import strip_prefix, unquote_c_style


def test_decodes_octal_escapes_as_utf8() -> None:
    assert unquote_c_style(r'"a/docs/gu\303\255a.md"') == "a/docs/guía.md"


def test_decodes_a_multibyte_name_made_only_of_escapes() -> None:
    assert unquote_c_style(r'"\346\227\245\346\234\254\350\252\236.txt"') == "日本語.txt"


@pytest.mark.parametrize(
    ("quoted", "expected"),
    [
        (r'"a/say \"hi\".txt"', 'a/say "hi".txt'),
        (r'"a/tab\there.txt"', "a/tab\there.txt"),
        (r'"a/back\\slash.txt"', "a/back\\slash.txt"),
        (r'"a/new\nline.txt"', "a/new\nline.txt"),
        (r'"a/bell\a\b\v\f\r.txt"', "a/bell\a\b\v\f\r.txt"),
    ],
)
def test_decodes_the_simple_escapes_git_writes(quoted: str, expected: str) -> None:
    assert unquote_c_style(quoted) == expected


@pytest.mark.parametrize(
    "name",
    ["a/src/main.py", "b/my file.txt", "plain", "a/guía.md", "", '"', 'a/"half-quoted', 'a/ends-with-quote"'],
)
def test_leaves_names_that_are_not_quoted_unchanged(name: str) -> None:
    assert unquote_c_style(name) == name


def test_turns_bytes_that_are_not_utf8_into_replacement_characters() -> None:
    assert unquote_c_style(r'"a/caf\351.txt"') == "a/caf\ufffd.txt"
    assert unquote_c_style(r'"\377\376x"') == "\ufffd\ufffdx"


def test_keeps_a_backslash_that_starts_no_known_escape() -> None:
    assert unquote_c_style(r'"a/odd\qname"') == "a/odd\\qname"
    assert unquote_c_style('"a/trailing\\"') == "a/trailing\\"


def test_does_not_read_non_octal_digits_as_an_octal_escape() -> None:
    assert unquote_c_style(r'"a/\189.txt"') == "a/\\189.txt"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a/src/x.py", "src/x.py"), ("b/src/x.py", "src/x.py"), ("src/x.py", "src/x.py"), ("c/x.py", "c/x.py")],
)
def test_strips_only_the_a_and_b_side_prefixes(path: str, expected: str) -> None:
    assert strip_prefix(path) == expected
