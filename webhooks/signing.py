"""How webhook requests are signed, and how a receiver checks them.

Each request carries two headers:

    X-Hexasubs-Timestamp: 1767225600
    X-Hexasubs-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the endpoint's secret>

A receiver recomputes the HMAC over the timestamp header, a dot and the raw request body (the bytes
as received, before any JSON parsing), compares it in constant time with the value after `v1=`, and
rejects timestamps older than a few minutes so a captured request cannot be replayed later.
`verify()` below is that check, usable as is by a Python receiver.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Hexasubs-Signature"
TIMESTAMP_HEADER = "X-Hexasubs-Timestamp"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str, body: bytes, timestamp_header: str, signature_header: str, *, tolerance=DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """True when the signature matches the body and the timestamp is recent."""
    try:
        timestamp = int(timestamp_header)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header or "")
