"""The toxiproxy HTTP API contract, as Shopify's toxiproxy answers it, against our server.

Raw HTTP (http.client) for status codes, bodies and JSON shapes; then the client's errors.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
from typing import Any

import pytest

from shakedown.errors import ConfigError, NotFoundError, UnreachableError
from shakedown.toxiproxy.client import Proxy, ToxiproxyClient
from shakedown.toxiproxy.server import ServerThread

PROXY_KEYS = {"name", "listen", "upstream", "enabled", "toxics"}
TOXIC_KEYS = {"name", "type", "stream", "toxicity", "attributes"}


def call(server: ServerThread, method: str, path: str, body: Any = None, **headers: str) -> tuple:
    """(status, decoded JSON or text, headers) of one request."""
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        value: Any = json.loads(raw) if raw else None
    except ValueError:
        value = raw.decode()
    return resp.status, value, dict(resp.getheaders())


def new_proxy(server: ServerThread, name: str = "db", upstream: str = "127.0.0.1:1") -> dict:
    status, body, _ = call(
        server, "POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": upstream}
    )
    assert status == 201, body
    return body


def refused(listen: str) -> bool:
    """Whether nothing accepts on ``listen`` any more."""
    host, port = listen.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_version_is_json(server, api):
    status, body, headers = call(server, "GET", "/version")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert body["version"].startswith("2.")


def test_version_is_plain_semver_and_server_header_says_ours(server, api):
    # The Ruby client reads the version with Gem::Version to decide on PATCH (>= 2.6.0);
    # "2.12.0+shakedown" does not parse there, so who we are goes in the Server header.
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/version")
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    assert re.fullmatch(rb'\{"version": "\d+\.\d+\.\d+"\}\n', raw), raw
    major, minor, _ = (int(n) for n in json.loads(raw)["version"].split("."))
    assert (major, minor) >= (2, 6), raw
    assert "shakedown" in resp.getheader("Server", ""), resp.getheaders()


def test_api_errors_are_text_plain_json_lines(server, api):
    # toxiproxy writes its JSON errors with Go's http.Error: text/plain, nosniff, a newline.
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/proxies/nope")
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    assert resp.status == 404
    assert resp.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    assert raw == b'{"error":"proxy not found","status":404}\n'


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"[1", 400, "bad request body"),
        ([{"upstream": "127.0.0.1:1"}], 400, "missing required field: name at proxy 1"),
        ({"name": "a"}, 400, "bad request body"),
    ],
)
def test_populate_errors_carry_proxies_null(server, api, body, status, error):
    got_status, got, headers = call(server, "POST", "/populate", body)
    assert got_status == status and got["status"] == status, got
    assert got["error"].startswith(error), got
    assert "proxies" in got and got["proxies"] is None, got
    assert headers["Content-Type"] == "application/json", "populate writes its own JSON reply"


def test_populate_failure_lists_the_proxies_done_before_it(server, api):
    taken = new_proxy(server, "first")["listen"]
    specs = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
        {"name": "b", "listen": taken, "upstream": "127.0.0.1:1"},
    ]
    status, body, _ = call(server, "POST", "/populate", specs)
    assert status == 500 and body["status"] == 500, body
    assert [p["name"] for p in body["proxies"]] == ["a"], body


@pytest.mark.parametrize(
    ("listen", "error"),
    [
        ("nonsense", "address nonsense: missing port in address"),
        ("127.0.0.1:99999", "address 99999: invalid port"),
        ("127.0.0.1:no-such-service", "lookup tcp/no-such-service: unknown port"),
    ],
)
def test_update_with_invalid_listen_is_rejected_and_proxy_kept(server, api, listen, error):
    created = new_proxy(server, "db")
    call(server, "POST", "/proxies/db/toxics", {"type": "latency"})
    status, body, _ = call(server, "POST", "/proxies/db", {"listen": listen})
    assert (status, body) == (500, {"error": error, "status": 500})
    after = call(server, "GET", "/proxies/db")[1]
    assert after["listen"] == created["listen"] and after["enabled"] is True, after
    assert not refused(created["listen"]), "the rejected update stopped the proxy"
    assert call(server, "POST", "/reset")[:2] == (204, None)
    assert call(server, "GET", "/proxies/db")[1]["toxics"] == [], "reset left the toxic"


def test_populate_with_invalid_listen_keeps_the_existing_proxy(server, api):
    created = new_proxy(server, "db")
    moved = [{"name": "db", "listen": "nonsense", "upstream": "127.0.0.1:1"}]
    status, body, _ = call(server, "POST", "/populate", moved)
    assert status == 500, body
    assert body == {
        "error": "address nonsense: missing port in address",
        "status": 500,
        "proxies": None,
    }
    assert call(server, "GET", "/proxies/db")[1] == created
    assert not refused(created["listen"])


def test_empty_proxy_list_is_an_object(server, api):
    assert call(server, "GET", "/proxies")[:2] == (200, {})


def test_create_proxy_201_with_bound_port(server, api):
    body = new_proxy(server, "db", "127.0.0.1:5432")
    assert set(body) == PROXY_KEYS
    assert body["name"] == "db" and body["upstream"] == "127.0.0.1:5432"
    assert body["enabled"] is True and body["toxics"] == []
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0, body["listen"]
    assert not refused(body["listen"])


def test_create_disabled_proxy_does_not_listen(server, api):
    spec = {"name": "off", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1", "enabled": False}
    status, body, _ = call(server, "POST", "/proxies", spec)
    assert status == 201 and body["enabled"] is False and body["listen"] == "127.0.0.1:0"


def test_duplicate_proxy_409(server, api):
    new_proxy(server, "db")
    status, body, _ = call(
        server, "POST", "/proxies", {"name": "db", "listen": "127.0.0.1:0", "upstream": "x:1"}
    )
    assert (status, body) == (409, {"error": "proxy already exists", "status": 409})


@pytest.mark.parametrize(
    ("spec", "missing"),
    [({"listen": "127.0.0.1:0", "upstream": "x:1"}, "name"), ({"name": "db"}, "upstream")],
)
def test_create_missing_field_400(server, api, spec, missing):
    status, body, _ = call(server, "POST", "/proxies", spec)
    assert (status, body) == (400, {"error": f"missing required field: {missing}", "status": 400})


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"name": 5, "upstream": "x:1"}'])
def test_create_bad_body_400(server, api, raw):
    status, body, _ = call(server, "POST", "/proxies", raw)
    assert status == 400 and body["status"] == 400
    assert body["error"].startswith("bad request body"), body


def test_listen_in_use_500(server, api):
    taken = new_proxy(server, "first")["listen"]
    spec = {"name": "second", "listen": taken, "upstream": "127.0.0.1:1"}
    status, body, _ = call(server, "POST", "/proxies", spec)
    assert status == 500
    assert body["error"] == f"listen tcp {taken}: bind: address already in use", body
    assert call(server, "GET", "/proxies/second")[0] == 404


def test_show_and_list_proxy(server, api):
    created = new_proxy(server, "db")
    assert call(server, "GET", "/proxies/db")[:2] == (200, created)
    assert call(server, "GET", "/proxies")[:2] == (200, {"db": created})


def test_missing_proxy_404(server, api):
    expected = (404, {"error": "proxy not found", "status": 404})
    assert call(server, "GET", "/proxies/nope")[:2] == expected
    assert call(server, "POST", "/proxies/nope", {"enabled": False})[:2] == expected
    assert call(server, "DELETE", "/proxies/nope")[:2] == expected
    assert call(server, "GET", "/proxies/nope/toxics")[:2] == expected
    assert call(server, "POST", "/proxies/nope/toxics", {"type": "latency"})[:2] == expected


def test_disable_closes_listener_enable_reopens_same_port(server, api):
    listen = new_proxy(server, "db")["listen"]
    status, body, _ = call(server, "POST", "/proxies/db", {"enabled": False})
    assert status == 200 and body["enabled"] is False and body["listen"] == listen
    assert refused(listen)
    status, body, _ = call(server, "POST", "/proxies/db", {"enabled": True})
    assert status == 200 and body["enabled"] is True and body["listen"] == listen
    assert not refused(listen)


def test_update_with_patch_changes_upstream_keeps_rest(server, api):
    listen = new_proxy(server, "db")["listen"]
    status, body, _ = call(server, "PATCH", "/proxies/db", {"upstream": "127.0.0.1:2"})
    assert status == 200
    assert body == {**body, "upstream": "127.0.0.1:2", "listen": listen, "enabled": True}


def test_delete_proxy_204_closes_listener(server, api):
    listen = new_proxy(server, "db")["listen"]
    status, body, _ = call(server, "DELETE", "/proxies/db")
    assert (status, body) == (204, None)
    assert refused(listen)
    assert call(server, "DELETE", "/proxies/db")[0] == 404


def test_populate_creates_keeps_and_replaces(server, api):
    specs = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:2", "enabled": False},
    ]
    status, body, _ = call(server, "POST", "/populate", specs)
    assert status == 201 and [p["name"] for p in body["proxies"]] == ["a", "b"]
    a = body["proxies"][0]
    assert set(a) == PROXY_KEYS and a["enabled"] is True
    call(server, "POST", "/proxies/a/toxics", {"type": "latency"})
    same = [{"name": "a", "listen": a["listen"], "upstream": "127.0.0.1:1"}]
    status, body, _ = call(server, "POST", "/populate", same)
    assert status == 201 and len(body["proxies"][0]["toxics"]) == 1, "unchanged proxy kept"
    moved = [{"name": "a", "listen": a["listen"], "upstream": "127.0.0.1:9"}]
    status, body, _ = call(server, "POST", "/populate", moved)
    assert status == 201
    assert body["proxies"][0]["upstream"] == "127.0.0.1:9" and body["proxies"][0]["toxics"] == []


def test_populate_validates_before_creating(server, api):
    specs = [{"name": "a", "upstream": "127.0.0.1:1"}, {"upstream": "127.0.0.1:2"}]
    status, body, _ = call(server, "POST", "/populate", specs)
    assert status == 400
    assert body["error"] == "missing required field: name at proxy 2", body
    assert call(server, "GET", "/proxies")[1] == {}


def test_populate_needs_an_array(server, api):
    status, body, _ = call(server, "POST", "/populate", {"name": "a"})
    assert status == 400 and body["error"].startswith("bad request body")


def test_create_toxic_defaults(server, api):
    new_proxy(server, "db")
    status, body, _ = call(server, "POST", "/proxies/db/toxics", {"type": "latency"})
    assert status == 200, "toxiproxy answers 200 (not 201) to a new toxic"
    assert body == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
        "attributes": {"latency": 0, "jitter": 0},
    }


@pytest.mark.parametrize(
    ("kind", "attributes"),
    [
        ("latency", {"latency": 100, "jitter": 10}),
        ("bandwidth", {"rate": 100}),
        ("slow_close", {"delay": 100}),
        ("timeout", {"timeout": 100}),
        ("reset_peer", {"timeout": 100}),
        ("slicer", {"average_size": 10, "size_variation": 2, "delay": 50}),
        ("limit_data", {"bytes": 100}),
    ],
)
def test_create_each_toxic_type(server, api, kind, attributes):
    new_proxy(server, "db")
    spec = {"name": "t1", "type": kind, "stream": "upstream", "toxicity": 0.5}
    status, body, _ = call(server, "POST", "/proxies/db/toxics", {**spec, "attributes": attributes})
    assert status == 200 and set(body) == TOXIC_KEYS
    assert body == {**spec, "attributes": attributes}


def test_duplicate_toxic_409_across_streams(server, api):
    new_proxy(server, "db")
    call(server, "POST", "/proxies/db/toxics", {"name": "t", "type": "latency"})
    dup = {"name": "t", "type": "timeout", "stream": "upstream"}
    assert call(server, "POST", "/proxies/db/toxics", dup)[:2] == (
        409,
        {"error": "toxic already exists", "status": 409},
    )


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (
            {"type": "latency", "stream": "sideways"},
            "stream was invalid, can be either upstream or downstream",
        ),
        ({"type": "lag"}, "invalid toxic type"),
        ({}, "invalid toxic type"),
    ],
)
def test_bad_toxic_400(server, api, spec, error):
    new_proxy(server, "db")
    status, body, _ = call(server, "POST", "/proxies/db/toxics", spec)
    assert (status, body) == (400, {"error": error, "status": 400})


@pytest.mark.parametrize(
    "body", [b"[1", {"type": "latency", "attributes": {"latency": "slow"}}, {"type": 1}]
)
def test_bad_toxic_body_400(server, api, body):
    new_proxy(server, "db")
    status, got, _ = call(server, "POST", "/proxies/db/toxics", body)
    assert status == 400 and got["error"].startswith("bad request body"), got


def test_toxic_list_and_show(server, api):
    new_proxy(server, "db")
    call(server, "POST", "/proxies/db/toxics", {"type": "latency"})
    call(server, "POST", "/proxies/db/toxics", {"type": "bandwidth", "stream": "upstream"})
    status, listing, _ = call(server, "GET", "/proxies/db/toxics")
    assert status == 200
    assert [t["name"] for t in listing] == ["bandwidth_upstream", "latency_downstream"]
    assert call(server, "GET", "/proxies/db/toxics/latency_downstream")[:2] == (200, listing[1])
    assert call(server, "GET", "/proxies/db")[1]["toxics"] == listing
    assert call(server, "GET", "/proxies/db/toxics/nope")[:2] == (
        404,
        {"error": "toxic not found", "status": 404},
    )


def test_update_toxic_merges_attributes(server, api):
    new_proxy(server, "db")
    spec = {"type": "latency", "toxicity": 0.5, "attributes": {"latency": 10, "jitter": 5}}
    call(server, "POST", "/proxies/db/toxics", spec)
    change = {"attributes": {"latency": 99}, "stream": "upstream", "name": "renamed"}
    status, body, _ = call(server, "POST", "/proxies/db/toxics/latency_downstream", change)
    assert status == 200
    assert body == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 0.5,
        "attributes": {"latency": 99, "jitter": 5},
    }
    status, body, _ = call(
        server, "PATCH", "/proxies/db/toxics/latency_downstream", {"toxicity": 1}
    )
    assert status == 200 and body["toxicity"] == 1 and body["attributes"]["latency"] == 99


def test_update_missing_toxic_404(server, api):
    new_proxy(server, "db")
    status, body, _ = call(server, "POST", "/proxies/db/toxics/nope", {"attributes": {}})
    assert (status, body) == (404, {"error": "toxic not found", "status": 404})


def test_delete_toxic_204_then_404(server, api):
    new_proxy(server, "db")
    call(server, "POST", "/proxies/db/toxics", {"type": "latency"})
    assert call(server, "DELETE", "/proxies/db/toxics/latency_downstream")[:2] == (204, None)
    assert call(server, "DELETE", "/proxies/db/toxics/latency_downstream")[0] == 404
    assert call(server, "GET", "/proxies/db/toxics")[1] == []


def test_reset_enables_all_and_removes_toxics(server, api):
    listen = new_proxy(server, "db")["listen"]
    call(server, "POST", "/proxies/db/toxics", {"type": "latency"})
    call(server, "POST", "/proxies/db", {"enabled": False})
    assert call(server, "POST", "/reset")[:2] == (204, None)
    body = call(server, "GET", "/proxies/db")[1]
    assert body["enabled"] is True and body["toxics"] == [] and body["listen"] == listen
    assert not refused(listen)


def test_unknown_route_404_and_wrong_method_405(server, api):
    assert call(server, "GET", "/nope")[0] == 404
    assert call(server, "GET", "/proxies/")[0] == 404
    assert call(server, "PUT", "/proxies")[0] == 405
    assert call(server, "DELETE", "/reset")[0] == 405


def test_browsers_are_refused(server, api):
    status, _, _ = call(server, "GET", "/proxies", **{"User-Agent": "Mozilla/5.0"})
    assert status == 403


def test_keep_alive_serves_several_requests(server, api):
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/version")
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["version"]
    finally:
        conn.close()


def test_client_round_trip(api, echo_upstream):
    proxy = api.create_proxy("c", "127.0.0.1:0", echo_upstream.address)
    assert isinstance(proxy, Proxy) and proxy.port > 0 and api.get_proxy("c") == proxy
    toxic = api.add_toxic("c", "latency", name="sd-1", stream="upstream", attributes={"latency": 5})
    assert (toxic.name, toxic.stream, toxic.attributes["latency"]) == ("sd-1", "upstream", 5)
    assert api.update_toxic("c", "sd-1", attributes={"jitter": 1}).attributes == {
        "latency": 5,
        "jitter": 1,
    }
    assert [t.name for t in api.toxics("c")] == ["sd-1"]
    assert [t.name for t in api.get_proxy("c").toxics] == ["sd-1"]
    assert api.disable("c").enabled is False and api.enable("c").enabled is True
    api.remove_toxic("c", "sd-1")
    api.remove_toxic("c", "sd-1", missing_ok=True)
    populated = api.populate([{"name": "d", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}])
    assert [p.name for p in populated] == ["d"] and set(api.proxies()) == {"c", "d"}
    api.reset()
    api.delete_proxy("d")
    api.delete_proxy("d", missing_ok=True)
    assert api.version().startswith("2.")


def test_client_errors_name_target_and_server(api, server):
    address = server.url.removeprefix("http://")
    with pytest.raises(NotFoundError, match=r"proxy 'ghost'.*proxy not found") as err:
        api.get_proxy("ghost")
    assert address in str(err.value) and "\n" not in str(err.value)
    api.create_proxy("c", "127.0.0.1:0", "127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"proxy 'c'.*already exists"):
        api.create_proxy("c", "127.0.0.1:0", "127.0.0.1:1")
    with pytest.raises(NotFoundError, match=r"toxic 'nope' on proxy 'c'.*toxic not found"):
        api.remove_toxic("c", "nope")
    with pytest.raises(ConfigError, match="invalid toxic type"):
        api.add_toxic("c", "lag")
    with pytest.raises(ConfigError, match="stream was invalid"):
        api.add_toxic("c", "latency", stream="sideways")


def test_client_unreachable():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    with pytest.raises(UnreachableError, match=f"127.0.0.1:{port}"):
        ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=2).proxies()
