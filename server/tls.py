"""The server's TLS context, built from ``tls_cert`` and ``tls_key`` when it starts.

Each file is checked on its own before OpenSSL sees the pair, because OpenSSL's own refusal
("PEM lib", "key values mismatch") names neither file nor setting: a user with a missing key,
a key given as the certificate or the key of another certificate must read which it is.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Final

from .config import Settings, SettingsError

__all__ = ["server_context"]

_CERTIFICATE: Final = "-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY: Final = "PRIVATE KEY-----"


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for ``settings`` (None without TLS); :class:`SettingsError` naming the
    setting and file when a file is missing, unreadable, not PEM, or the key is not the
    certificate's."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    _check_pem("tls_cert", settings.tls_cert, _CERTIFICATE, "a PEM certificate")
    _check_pem("tls_key", settings.tls_key, _PRIVATE_KEY, "a PEM private key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key, password=_no_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise SettingsError(
                f"tls_key {settings.tls_key} is not the private key of tls_cert {settings.tls_cert}"
            ) from None
        raise SettingsError(
            f"tls_cert {settings.tls_cert} / tls_key {settings.tls_key}: cannot use them:"
            f" {exc.reason or exc}"
        ) from None
    return context


def _no_password() -> str:
    """Refuse an encrypted key instead of letting OpenSSL prompt on the terminal (a server
    started by an editor or a service manager has none to answer)."""
    raise SettingsError("tls_key is encrypted: give an unencrypted key (mode 0600)")


def _check_pem(setting: str, path: Path, marker: str, what: str) -> None:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise SettingsError(f"{setting} {path}: cannot read it: {exc.strerror or exc}") from None
    if marker not in text:
        raise SettingsError(f"{setting} {path}: not {what}")
