"""Token estimates before a request is sent.

Tokenizers differ by model and the exact one is rarely at hand (loading one means a download),
so the planner uses a deliberately cautious estimate: code runs at about 3.5 to 4 characters a
token on current BPE vocabularies, and we count 3.5 so that a request planned to fit does fit.
After each call the endpoint's own ``usage`` is what gets reported and billed.
"""

CHARS_PER_TOKEN = 3.5
# Chat templates wrap every message in a few special tokens (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    """A cautious estimate of the tokens ``text`` costs."""
    return int(len(text) / CHARS_PER_TOKEN) + 1


def estimate_messages(messages: list[dict[str, str]]) -> int:
    """Estimated prompt tokens of a chat request."""
    return sum(estimate_tokens(message["content"]) + MESSAGE_OVERHEAD_TOKENS for message in messages)


# What one answer usually costs, for estimates made before the call: a few findings in JSON.
ESTIMATED_OUTPUT_TOKENS = 400
