"""Delivery ids as GitHub sends them in ``X-GitHub-Delivery`` (GUIDs, lower case), named so a test still reads.

    service.deliver("pull_request", payload, guid("opened-1"))

A name gives the same GUID in every test and every run (a version 5 UUID).
"""

from __future__ import annotations

import uuid
from typing import Final

_NAMESPACE: Final = uuid.UUID("5a0c6e1e-3f0b-4c59-9d7e-8f1b2a4c6d8e")


def guid(name: str) -> str:
    """The delivery id a test calls ``name``."""
    return str(uuid.uuid5(_NAMESPACE, name))
