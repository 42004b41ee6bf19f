"""Content-Encoding decoding: gzip, zlib and raw deflate, limits enforced while inflating."""

from __future__ import annotations

import gzip
import zlib

import pytest

from collector.codecs.compression import decompress
from collector.errors import PermanentError

DATA = b"span data " * 1000


def _raw_deflate(data: bytes) -> bytes:
    """Deflate without the zlib header, as some clients send for Content-Encoding: deflate."""
    raw = zlib.compressobj(wbits=-15)
    return raw.compress(data) + raw.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("", DATA),
        ("identity", DATA),
        ("gzip", gzip.compress(DATA)),
        ("GZIP", gzip.compress(DATA)),
        ("deflate", zlib.compress(DATA)),
        ("deflate", _raw_deflate(DATA)),
    ],
)
def test_decodes(encoding: str, body: bytes) -> None:
    assert decompress(body, encoding, len(DATA)) == DATA


def test_gzip_bomb_is_stopped_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024))  # 200 MiB of zeros in about 200 KB
    with pytest.raises(PermanentError) as err:
        decompress(bomb, "gzip", 1024 * 1024)
    assert err.value.status == 413
    assert "counted after decompression" in err.value.message


@pytest.mark.parametrize(
    ("encoding", "body", "status", "message"),
    [
        ("br", b"x", 415, "unsupported Content-Encoding 'br'"),
        ("gzip", b"not gzip at all", 400, "body is not valid gzip data"),
        ("gzip", gzip.compress(DATA)[:-20], 400, "gzip body is truncated"),
        ("", DATA, 413, "larger than the limit of 10 bytes"),
    ],
)
def test_errors(encoding: str, body: bytes, status: int, message: str) -> None:
    with pytest.raises(PermanentError) as err:
        decompress(body, encoding, 10 if status == 413 else len(DATA))
    assert err.value.status == status
    assert message in err.value.message
