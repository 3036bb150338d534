"""Small diffs written out by hand, for tests that need exact line numbers."""

from __future__ import annotations

from reviewbot.engine.diff import Diff, parse_diff


def modified_file_diff(path: str = "app/service.py") -> str:
    """A modified file with two hunks: new lines 10-17 and 40-45 (old 10-15 and 38-42)."""
    lines = [
        f"diff --git a/{path} b/{path}",
        "index 1111111..2222222 100644",
        f"--- a/{path}",
        f"+++ b/{path}",
        "@@ -10,6 +10,8 @@ def handler(request):",
        "     user = request.user",
        "     if user is None:",
        "         return None",
        '+    token = request.headers["Authorization"]',
        '+    query = "SELECT * FROM users WHERE token = \'" + token + "\'"',
        "     result = db.execute(query)",
        "     return result",
        " ",
        "@@ -38,5 +40,6 @@ def cleanup():",
        "     for item in items:",
        "-        item.close()",
        "+        item.close",
        "+        log(item)",
        "     return True",
        " ",
        " ",
    ]
    return "\n".join(lines) + "\n"


def parsed(text: str) -> Diff:
    return parse_diff(text)
