"""The Hugging Face Hub, when it cannot be reached: one quick look before a hub name is used.

    hub.prepare()        # before datasets.load_dataset / from_pretrained / snapshot_download with a hub name

Offline, the Hugging Face libraries retry a lookup for tens of seconds, printing a line per retry, before they
fail. `prepare` tries one connection to the hub (`HF_ENDPOINT`, default huggingface.co) with a short timeout;
when it fails it puts the libraries in their offline mode (`HF_HUB_OFFLINE`), so that what is in their cache
still loads and anything else fails at once, with the caller's one-line message. `HF_HUB_OFFLINE=1` set by
the user is left alone.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from urllib.parse import urlparse

TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")


def offline_by_choice() -> bool:
    return any(os.environ.get(flag, "").strip().lower() in _TRUE
               for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.cache
def unreachable() -> str | None:
    """Why the hub cannot be reached from here (None when it can), looked at once per process."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=TIMEOUT_S).close()
    except OSError as error:
        return f"{host}:{port}: {getattr(error, 'strerror', None) or error}"
    return None


def prepare() -> str | None:
    """Put the Hugging Face libraries offline when the hub cannot be reached; the reason, or None."""
    if offline_by_choice():
        return "offline mode is set (HF_HUB_OFFLINE)"
    reason = unreachable()
    if reason is None:
        return None
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - a dependency of transformers and datasets
        pass
    config = sys.modules.get("datasets.config")
    if config is not None:  # imported before: it copied the setting then
        config.HF_HUB_OFFLINE = True
    return f"the Hugging Face Hub cannot be reached ({reason})"
