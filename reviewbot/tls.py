"""One TLS context per process for each HTTP library the clients are built on.

A client that verifies TLS loads the CA certificates when it is made, tens of ms each time, and
a worker makes a GitHub client and a model client for every review. Each context is made by its
library's own ``create_ssl_context`` (httpx for githubkit, httpx or its successor httpx2 for
openai), so certifi's CAs, ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` mean what they always meant.
"""

from __future__ import annotations

import functools
import ssl
from types import ModuleType


@functools.cache
def shared_context(library: ModuleType) -> ssl.SSLContext:
    """``library.create_ssl_context()``, made once."""
    context: ssl.SSLContext = library.create_ssl_context()
    return context
