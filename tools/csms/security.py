"""Handshake checks: charge point id from the URL, HTTP Basic auth (SP1/2), TLS context (SP2/3)."""

from __future__ import annotations

import hmac
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_authorization_basic

from .config import CsmsConfig


def cp_id_from_path(path: str) -> str:
    """`/<prefix>/<id>?query` -> the last path segment, percent-decoded ("" if there is none)."""
    segments = urlsplit(path).path.split("/")
    return unquote(segments[-1]) if segments else ""


def basic_auth_failure(headers: Headers, cp_id: str, config: CsmsConfig) -> str | None:
    """Why the request fails Basic auth for this charger, or None if it passes / is not required."""
    if not config.auth_required():
        return None
    header = headers.get("Authorization")
    if header is None:
        return "missing credentials"
    try:
        username, password = parse_authorization_basic(header)
    except InvalidHeader:
        return "unsupported credentials"
    if username != cp_id:
        return f"username {username!r} is not the charge point id"
    expected = config.password_for(cp_id)
    if expected is None:
        return "no password configured for this charge point"
    if not hmac.compare_digest(expected.encode(), password.encode()):
        return "wrong password"
    return None


def server_ssl_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS >= 1.2 with the given server certificate; client certificates required if client_ca."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def peer_common_name(peercert: Any) -> str | None:
    """CN of a verified peer certificate as returned by SSLObject.getpeercert()."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
