"""Content-Encoding decoding with a size limit enforced while inflating (a gzip bomb stops early)."""

from __future__ import annotations

import zlib

from collector.errors import PermanentError

_CHUNK = 256 * 1024


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Decode `body` per its Content-Encoding (identity, gzip, deflate); at most `limit` bytes out."""
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    if enc in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        # RFC 9110 "deflate" is zlib-wrapped, but some clients send raw deflate: detect the header.
        wbits = (
            zlib.MAX_WBITS
            if body[:1] and (body[0] & 0x0F) == 8 and int.from_bytes(body[:2], "big") % 31 == 0
            else -zlib.MAX_WBITS
        )
    else:
        raise PermanentError(
            f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none",
            status=415,
            reason="encoding",
        )
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    data = body
    try:
        while data:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_large(limit)
            data = inflater.unconsumed_tail
            if inflater.eof:
                break
        out += inflater.flush()
    except zlib.error as exc:
        raise PermanentError(
            f"body is not valid {enc} data: {exc} (after {len(out)} decoded bytes)", reason="encoding"
        ) from None
    if len(out) > limit:
        raise _too_large(limit)
    if not inflater.eof:
        raise PermanentError(f"{enc} body is truncated after {len(out)} decoded bytes", reason="encoding")
    return bytes(out)


def _too_large(limit: int) -> PermanentError:
    return PermanentError(
        f"request body is larger than the limit of {limit} bytes (counted after decompression)",
        status=413,
        reason="too_large",
    )
