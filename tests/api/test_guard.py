"""Parsing that cannot be crashed: nesting, sizes, lone surrogates, huge numbers and upload
names are refused with 4xx in the project's JSON format, and the node stays up."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.config import Settings
from openledger.datanets.snapshots import parse_ref
from openledger.errors import ValidationError
from openledger.http.guard import json_problem
from openledger.http.uploads import safe_name
from openledger.node import Node
from openledger.store.models import digits_id
from tests.conftest import PASSWORD, operator_headers

WEB = {"X-OpenLedger-Web": "1", "Content-Type": "application/json"}


@pytest.fixture
def client(home: Settings) -> Iterator[TestClient]:
    node = Node(
        replace(home, api_json_max_bytes=200_000, api_upload_max_bytes=400_000),
        password_source=lambda: PASSWORD,
    )
    with TestClient(
        create_app(node), base_url="http://127.0.0.1:8000", raise_server_exceptions=False
    ) as c:
        yield c
    node.close()


def test_80000_nested_arrays_are_refused_and_the_node_stays_up(client: TestClient) -> None:
    deep = b"[" * 80_000 + b"]" * 80_000  # 160 KB: segfaulted the node before
    for path in ("/web/auth/message", "/v1/completions", "/datanets"):
        r = client.post(path, content=deep, headers=WEB)
        assert r.status_code == 400, path
    assert "deeper than 64" in client.post("/datanets", content=deep, headers=WEB).json()["message"]
    assert client.get("/health").status_code == 200


def test_the_decoder_itself_cannot_overflow_the_stack() -> None:
    """py_ecc (web3) raises the recursion limit to 100,000; create_app puts it back, so even
    JSON that slipped past the scan raises RecursionError instead of killing the process."""
    code = (
        "import json, web3, sys; from openledger.http.guard import restore_recursion_limit; "
        "restore_recursion_limit(); "
        'exec(\'try:\\n json.loads("[" * 200000)\\nexcept RecursionError:\\n print("ok")\')'
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-500:]


def test_bodies_over_the_cap_are_413_before_they_are_read(client: TestClient) -> None:
    big = b'{"address": "' + b"a" * 300_000 + b'"}'
    r = client.post("/web/auth/message", content=big, headers=WEB)
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLargeError"
    r = client.post("/v1/completions", content=big, headers=WEB)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    lying = {**WEB, "Content-Length": "999999999"}
    assert client.post("/datanets", content=b"{}", headers=lying).status_code == 413


def test_uploads_have_their_own_cap(client: TestClient) -> None:
    def upload(size: int) -> tuple[bytes, dict[str, str]]:
        body = (
            b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n" + b"x" * size + b"\r\n--b--\r\n"
        )
        return body, {"Content-Type": "multipart/form-data; boundary=b"}

    path = "/datanets/facts/contributions"
    body, headers = upload(300_000)  # over the JSON cap, under the upload cap: on to the route
    assert client.post(path, content=body, headers=headers).status_code == 401
    body, headers = upload(500_000)
    r = client.post(path, content=body, headers=headers)
    assert r.status_code == 413 and "400,000 bytes for an upload" in r.json()["message"]
    assert "several contributions" in r.json()["fix"]
    # without a Content-Length (chunked), the read stops at the cap
    r = client.post(
        path,
        content=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
        headers=headers,
    )
    assert r.status_code == 413


def test_lone_surrogates_are_400_pairs_pass() -> None:
    assert json_problem(b'{"prompt": "a\\ud800b"}', 64) is not None
    assert json_problem(b'{"prompt": "a\\udc00"}', 64) is not None
    assert json_problem(b'{"prompt": "\\ud83d\\ude00 ok"}', 64) is None  # an emoji
    assert json_problem(b'{"prompt": "\\\\ud800"}', 64) is None  # an escaped backslash
    assert json_problem(b'{"a": "[[[[[["}', 2) is None  # brackets in strings do not nest


def test_lone_surrogate_over_http(client: TestClient) -> None:
    r = client.post(
        "/v1/completions", content=b'{"model": "m", "prompt": "a\\ud800b"}', headers=WEB
    )
    assert r.status_code == 400 and "surrogate" in r.json()["error"]["message"]


PAST_THE_SCAN = {
    "UTF-8 of a lone surrogate": '{"address": "a\ud800b"}'.encode("utf-8", "surrogatepass"),
    "UTF-16": '{"address": "a\\ud800b"}'.encode("utf-16-be"),
    "UTF-16 with a byte-order mark": '{"address": "0xab"}'.encode("utf-16"),
    "UTF-32, 20,000 deep": ("[" * 20_000 + "]" * 20_000).encode("utf-32-le"),
    "UTF-8 with a byte-order mark, 80,000 deep": b"\xef\xbb\xbf" + b"[" * 80_000 + b"]" * 80_000,
    "a lone surrogate escape in a top-level string": b'"a\\ud800"',
}


@pytest.mark.parametrize("name", list(PAST_THE_SCAN))
def test_json_the_scan_could_not_read_is_400_not_500(client: TestClient, name: str) -> None:
    """The decoder guesses UTF-16 and UTF-32 from NUL bytes and decodes UTF-8's encoding of
    a surrogate (surrogatepass): such bodies went past the scan and came out as lone
    surrogates (500) or nesting it never counted. JSON is UTF-8 (RFC 8259); the rest is 400."""
    body = PAST_THE_SCAN[name]
    r = client.post("/web/auth/message", content=body, headers=WEB)
    assert r.status_code == 400 and r.json()["field"] == "body", (name, r.text[:200])
    r = client.post("/v1/completions", content=body, headers=WEB)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", name
    r = client.post("/web/auth/message", content=body, headers={"X-OpenLedger-Web": "1"})
    assert r.status_code == 400, (name, "no content type: FastAPI parses it as JSON too")
    assert client.get("/health").status_code == 200


def test_utf8_text_of_every_plane_passes_the_scan_nul_does_not() -> None:
    assert json_problem('{"a": "café, 東京, 😀"}'.encode(), 64) is None
    assert json_problem(b'{"a": "\\u00e9\\ud83d\\ude00"}', 64) is None
    assert json_problem(b'{"a": "x\\\\u0000y"}', 64) is None  # a backslash, then text
    assert json_problem(b'{"a": "x\\u0000y"}', 64) is not None  # NUL: no column takes it


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/epochs/9223372036854775808", "number"),
        ("/jobs/9223372036854775808", "job"),
        ("/datanets?offset=9223372036854775808", "offset"),
        ("/models?limit=100000", "limit"),
        ("/grants/-1", "grant"),
        ("/datanets/x/contributions/99999999999999999999", "contribution"),
    ],
)
def test_out_of_range_numbers_are_422_naming_the_field(
    client: TestClient, path: str, field: str
) -> None:
    r = client.get(path)
    assert r.status_code == 422, (path, r.status_code, r.text[:200])
    assert r.json()["error"] == "ValidationError" and r.json()["field"] == field


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/datanets/9223372036854775808"),
        ("GET", "/datanets/99999999999999999999999"),
        ("GET", "/datanets/%C2%B2"),
        ("GET", "/models/9223372036854775808"),
        ("GET", "/models/%C2%B2"),
        ("POST", "/models/9223372036854775808/attribute"),
    ],
)
def test_names_made_of_huge_or_unicode_digits_are_4xx(
    client: TestClient, method: str, path: str
) -> None:
    """A datanet or model is named or numbered; a name of digits past 2^63-1 (or of digits
    int() refuses, like '²') was a database overflow (500) before it was a 'no such' 404."""
    body = {"prompt": "a", "completion": "b"} if method == "POST" else None
    auth = operator_headers(client.app.state.node)  # type: ignore[attr-defined]
    r = client.request(method, path, json=body, headers=auth)
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])
    assert r.json()["error"] in ("NotFoundError", "ValidationError")


def test_digits_id_takes_what_a_column_holds() -> None:
    assert [digits_id(x) for x in ("0", "42", str(2**63 - 1), 7)] == [0, 42, 2**63 - 1, 7]
    for bad in (str(2**63), "9" * 40, "²", "٣", "-1", "1.0", "", "abc", -1, 2**63):
        assert digits_id(bad) is None, bad
    assert parse_ref("facts@3") == ("facts", 3)
    for bad in ("facts@²", "facts@0", f"facts@{2**63}"):  # int("²") raised ValueError
        with pytest.raises(ValidationError) as err:
            parse_ref(bad)
        assert err.value.field == "version"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("..", "file0"),
        (".", "file0"),
        ("", "file0"),
        (None, "file0"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\x.txt", "x.txt"),
        (".hidden.md", "hidden.md"),
        ("a b.txt", "a_b.txt"),
    ],
)
def test_upload_names_are_sanitised(raw: str | None, expected: str) -> None:
    assert safe_name(raw, 0) == expected


def test_a_300_character_upload_name_keeps_its_extension() -> None:
    name = safe_name("x" * 300 + ".jsonl", 0)
    assert len(name.encode()) <= 255 and name.endswith(".jsonl")


def test_errors_are_json_everywhere(client: TestClient) -> None:
    assert client.get("/no/such/route").json()["error"] == "NotFoundError"
    r = client.put("/datanets")
    assert r.status_code == 405 and r.json()["error"] == "MethodNotAllowedError"
    r = client.post("/datanets", content=b"{not json", headers=WEB)
    assert r.status_code in (400, 401)
