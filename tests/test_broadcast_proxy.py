"""Broadcast connectors behind a proxy: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, against a local CONNECT proxy."""

import select
import shutil
import socket
import socketserver
import subprocess
import threading
from base64 import b64encode
from urllib.parse import urlsplit

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from broadcasts import actions
from broadcasts.connectors import Message, MessengerConnector, WebhookConnector
from broadcasts.models import Broadcast, Delivery
from subscribers.actions import add_labels
from subscribers.models import Channel
from tests.fake_graph import FakeGraph

pytestmark = pytest.mark.django_db

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD")


class Proxy:
    """A CONNECT proxy (and a forward proxy for absolute URIs) that records what it was asked and relays bytes."""

    def __init__(self, require=None):
        self.tunnels, self.forwarded, self.authorizations = [], [], []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0  # read the head byte by byte: what follows it is relayed as is

            def handle(self):
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = self.rfile.readline()
                    if not line:
                        return
                    head += line
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _version = request_line.split(" ")
                headers = dict(line.split(": ", 1) for line in header_lines if line)
                authorization = headers.get("Proxy-Authorization")
                proxy.authorizations.append(authorization)
                if require is not None and authorization != require:
                    self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                    return
                if method == "CONNECT":
                    proxy.tunnels.append(target)
                    host, port = target.rsplit(":", 1)
                    upstream = socket.create_connection((host, int(port)), timeout=2)
                    self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                else:
                    proxy.forwarded.append(target)
                    parts = urlsplit(target)
                    upstream = socket.create_connection((parts.hostname, parts.port), timeout=2)
                    upstream.sendall(head)
                with upstream:
                    _relay(self.connection, upstream)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            block_on_close = False

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _relay(one, other):
    """Copy bytes both ways until either side closes (or nothing moves for 2 seconds)."""
    while True:
        readable, _writable, _failed = select.select([one, other], [], [], 2)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            (other if sock is one else one).sendall(data)


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch):
    """Each test starts with no proxy setting at all, in either case."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, valid one day: (cert file, key file)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate for the TLS test server")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def tls_graph(certificate, settings, monkeypatch):
    """The Graph API over TLS, trusted by the connector (ssl.create_default_context reads SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    server = FakeGraph(certificate, keep_alive=True)
    settings.MESSENGER_GRAPH_URL = server.url + "/v23.0"
    yield server
    server.stop()


@pytest.fixture
def graph(settings):
    server = FakeGraph(keep_alive=True)
    settings.MESSENGER_GRAPH_URL = server.url + "/v23.0"
    yield server
    server.stop()


@pytest.fixture
def proxy():
    server = Proxy()
    yield server
    server.stop()


def _send_one(channel, subscriber, count=1):
    connector = MessengerConnector(channel)
    try:
        return [connector.send(subscriber, Message(f"hi {number}")) for number in range(count)]
    finally:
        connector.close()


def test_a_broadcast_goes_through_the_https_proxy_tunnel_with_its_credentials(
    tls_graph, proxy, messenger_channel, make_subscriber, make_label, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", f"http://robot:s%40cret@127.0.0.1:{proxy.port}")
    vip = make_label("VIP")
    people = [make_subscriber(channel=messenger_channel, last_seen_at=timezone.now()) for _ in range(3)]
    add_labels(people, [vip])
    broadcast = Broadcast.objects.create(title="Sale", text="Hi", audience={"filters": {"label": ["vip"]}})
    actions.start_broadcast(broadcast, by=None)
    broadcast = actions.run_broadcast_now(broadcast.pk, sleep=lambda seconds: None)

    assert (broadcast.status, broadcast.sent_count) == ("done", 3)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    # The group went out concurrently: one tunnel per sending thread, each to the Graph API, each authenticated.
    assert proxy.tunnels and set(proxy.tunnels) == {tls_graph.address}
    assert set(proxy.authorizations) == {"Basic " + b64encode(b"robot:s@cret").decode()}
    assert len(tls_graph.requests) == 3
    assert all(urlsplit(request["path"]).path == "/v23.0/me/messages" for request in tls_graph.requests)
    assert not any("Proxy-Authorization" in request["headers"] for request in tls_graph.requests)


def test_the_tunnel_is_kept_alive_between_messages(tls_graph, proxy, messenger_channel, make_subscriber, monkeypatch):
    monkeypatch.setenv("https_proxy", f"127.0.0.1:{proxy.port}")  # lower case, no scheme: http:// is meant
    outcomes = _send_one(messenger_channel, make_subscriber(), count=3)
    assert [outcome.kind for outcome in outcomes] == ["sent"] * 3
    assert proxy.tunnels == [tls_graph.address]
    assert proxy.authorizations == [None]


def test_plain_http_targets_go_to_the_http_proxy_as_absolute_uris(make_subscriber, proxy, monkeypatch):
    runtime = FakeGraph(keep_alive=True)
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://robot:pw@127.0.0.1:{proxy.port}")
        web = Channel.objects.get(name="web")
        web.settings = {"url": runtime.url + "/bot?v=1", "secret": "s3cret"}
        connector = WebhookConnector(web)
        outcome = connector.send(make_subscriber(channel=web), Message("hi"))
        connector.close()
    finally:
        runtime.stop()
    assert outcome.kind == "sent"
    assert proxy.forwarded == [runtime.url + "/bot?v=1"] and proxy.tunnels == []
    assert proxy.authorizations == ["Basic " + b64encode(b"robot:pw").decode()]
    assert len(runtime.requests) == 1


def test_no_proxy_bypasses_the_proxy(tls_graph, proxy, messenger_channel, make_subscriber, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert [outcome.kind for outcome in _send_one(messenger_channel, make_subscriber())] == ["sent"]
    assert (proxy.tunnels, proxy.forwarded, proxy.authorizations) == ([], [], [])
    assert len(tls_graph.requests) == 1


@pytest.mark.parametrize(
    "entry, bypassed", [("{address}", True), ("127.0.0.1:1", False), ("localhost,{address}", True)]
)
def test_no_proxy_entries_with_a_port_match_that_port_only(
    entry, bypassed, tls_graph, proxy, messenger_channel, make_subscriber, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", entry.format(address=tls_graph.address))
    assert [outcome.kind for outcome in _send_one(messenger_channel, make_subscriber())] == ["sent"]
    assert len(proxy.tunnels) == (0 if bypassed else 1)
    assert len(tls_graph.requests) == 1


def test_without_proxy_settings_it_connects_directly(graph, proxy, messenger_channel, make_subscriber, monkeypatch):
    connector = MessengerConnector(messenger_channel)
    # The environment is read when the connector is made: a later change does not move its messages.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    outcome = connector.send(make_subscriber(), Message("hi"))
    connector.close()
    assert outcome.kind == "sent"
    assert len(graph.requests) == 1 and proxy.authorizations == []


def test_the_proxy_is_chosen_by_the_targets_scheme(graph, proxy, messenger_channel, make_subscriber, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")  # the Graph API here is plain http
    assert [outcome.kind for outcome in _send_one(messenger_channel, make_subscriber())] == ["sent"]
    assert len(graph.requests) == 1 and proxy.authorizations == []


def test_a_tunnel_the_proxy_refuses_is_retried(tls_graph, messenger_channel, make_subscriber, monkeypatch):
    strict = Proxy(require="Basic bm9ib2R5")
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{strict.port}")
        [outcome] = _send_one(messenger_channel, make_subscriber())
    finally:
        strict.stop()
    assert outcome.kind == "retry" and "407" in outcome.detail
    assert tls_graph.requests == []


@pytest.mark.parametrize("proxy_url", ["https://robot:secret@proxy.example:3128", "socks5://proxy.example:1080"])
def test_an_unsupported_proxy_pauses_with_the_reason(
    proxy_url, tls_graph, messenger_channel, make_subscriber, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    [outcome] = _send_one(messenger_channel, make_subscriber())
    assert outcome.kind == "stop"
    assert "HTTPS_PROXY" in outcome.detail and "http://" in outcome.detail and "secret" not in outcome.detail
    assert tls_graph.requests == []


def test_a_proxy_broadcasts_cannot_use_is_a_warning_at_start(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "https://robot:secret@proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    [warning] = [message for message in run_checks() if message.id == "broadcasts.W001"]
    assert "https://proxy.example:3128" in warning.msg and "HTTPS_PROXY" in warning.msg
    assert "secret" not in warning.msg


def test_an_http_proxy_raises_no_warning(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert [message for message in run_checks() if message.id == "broadcasts.W001"] == []
