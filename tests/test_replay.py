"""The replay server's core (demo/replay/core.py): files with Range, gzip, and its hard modes."""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from demo.replay.core import Faults, ReplayServer, Request, Response

BLOB = os.urandom(300_000)


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def hello(request: Request) -> Response | None:
    if request.path == "/здравей":
        return Response(200, ("Здравей, " + request.params.get("име", "свят") + "! " * 200).encode())
    return None


@pytest.fixture()
def server(tmp_path: Path):
    dump = tmp_path / "dump.tar.gz"
    dump.write_bytes(BLOB)
    with ReplayServer(hello, files={"/runs/dump.tar.gz": dump, "/small.bin": BLOB[:1000]}) as srv:
        yield srv


def test_files_answer_ranges_like_a_download_server(server):
    status, headers, body = get(server.url("/runs/dump.tar.gz"))
    assert status == 200 and body == BLOB and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "application/gzip" and "Content-Encoding" not in headers
    tag = headers["ETag"]
    status, part_headers, part = get(server.url("/runs/dump.tar.gz"), Range="bytes=1000-")
    assert status == 206 and part == BLOB[1000:]
    assert part_headers["Content-Range"] == f"bytes 1000-{len(BLOB) - 1}/{len(BLOB)}"
    status, _, part = get(server.url("/runs/dump.tar.gz"), Range="bytes=10-19", **{"If-Range": tag})
    assert status == 206 and part == BLOB[10:20]
    status, _, whole = get(server.url("/runs/dump.tar.gz"), Range="bytes=10-19",
                           **{"If-Range": '"changed"'})
    assert status == 200 and whole == BLOB  # the file changed: start over
    status, headers, _ = get(server.url("/runs/dump.tar.gz"), Range=f"bytes={len(BLOB)}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(BLOB)}"
    status, _, part = get(server.url("/small.bin"), Range="bytes=-10")
    assert status == 206 and part == BLOB[990:1000]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("HEAD", "/runs/dump.tar.gz")
    head = conn.getresponse()
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(BLOB)
    assert head.read() == b""
    conn.close()


def test_sites_are_gzipped_when_asked_and_unknown_paths_404(server):
    status, headers, body = get(server.url("/%D0%B7%D0%B4%D1%80%D0%B0%D0%B2%D0%B5%D0%B9?"
                                           "%D0%B8%D0%BC%D0%B5=%D0%A1%D0%BE%D1%84%D0%B8%D1%8F"),
                                **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).decode().startswith("Здравей, София!")
    assert get(server.url("/nothing"))[0] == 404
    assert server.counts["gzip"] == 1 and server.paths()[-1] == "/nothing"


def test_truncated_body_ends_short_of_its_length(server):
    server.faults = Faults(truncate_after=50_000, only=r"\.tar\.gz$")
    with pytest.raises(http.client.IncompleteRead) as caught:
        urllib.request.urlopen(server.url("/runs/dump.tar.gz"), timeout=10).read()
    assert caught.value.partial == BLOB[:50_000]
    assert get(server.url("/small.bin"))[2] == BLOB[:1000]  # other paths unharmed
    assert server.counts["truncated"] == 1


def test_stalled_and_slow_bodies(server):
    server.faults.stall_after = 20_000
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /runs/dump.tar.gz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):  # the server goes silent part-way, connection open
            while True:
                chunk = sock.recv(65536)
                assert chunk, "the connection closed instead of stalling"
                received += chunk
        assert received.endswith(BLOB[:20_000]) and b"Content-Length: 300000" in received
    server.faults = Faults(rate=2_000_000)  # paced in chunks, the bytes unchanged
    status, _, part = get(server.url("/runs/dump.tar.gz"), Range="bytes=123-")
    assert status == 206 and part == BLOB[123:]


def test_a_body_smaller_than_a_chunk_is_slowed_too(server):
    """At 2,000 bytes/s the 1,000-byte /small.bin takes half a second: whatever the machine's load,
    no more than 0.2 s worth of it (plus one tenth-second piece) is out 0.2 s after the request."""
    server.faults = Faults(rate=2_000, only=r"^/small\.bin$")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        asked = time.monotonic()
        sock.sendall(b"GET /small.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        while time.monotonic() < asked + 0.2:
            sock.settimeout(max(asked + 0.2 - time.monotonic(), 0.001))
            try:
                received += sock.recv(65536)
            except TimeoutError:
                break
        head, _, early = received.partition(b"\r\n\r\n")
        assert len(early) <= 600, len(early)  # 0.2 s at 2,000 bytes/s, and one piece of 200
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            received += chunk
    assert received.partition(b"\r\n\r\n")[2] == BLOB[:1000]
    assert get(server.url("/runs/dump.tar.gz"))[2] == BLOB  # other paths at full speed
