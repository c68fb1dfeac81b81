"""How a message reaches a person on each kind of channel, and what each channel's answer means.

`connector_for(channel)` gives one connector per channel, reused for a worker's
groups (it keeps its HTTP connections open). `send()` returns an `Outcome`, and
`send_many()` sends a group of messages at once (concurrently over HTTP):

- sent: delivered (or handed to the channel);
- failed: permanent for this person (unreachable, outside the window, refused);
- retry: a temporary error, tried again later with backoff;
- throttled: the channel asks us to slow down; tried again later, and the whole channel waits;
- unknown: the request went out and no answer came: it may have been delivered, so it is never resent;
- stop: a page-level problem (blocked page, bad token, no address): the broadcast pauses with the reason.

Connection errors before anything was sent are `retry`; a timeout waiting for the
answer is `unknown`, so a message is never sent twice.

Proxies: the standard environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, in either
case, through `urllib.request.getproxies()`) is read once, when a connector is made,
and decided per target host and port (`NO_PROXY` entries may carry a port). An https
target goes through a CONNECT tunnel to the proxy (TLS with the target inside it,
`Proxy-Authorization: Basic` in the CONNECT when the proxy URL has `user:password@`);
a plain http target (a bot runtime or a test server) is sent to the proxy as an
absolute URI, as a forward proxy expects (and as httpx, which the webhook outbox uses,
does). Only http:// proxy URLs are supported: an https:// (or socks) proxy pauses the
broadcast with the reason, as a missing token does, rather than sending around the
proxy; `manage.py check` (and so `migrate`, `db_worker`) warns of it at start
(broadcasts.W001).
"""

import http.client
import json
import socket
import ssl
import threading
import time
import urllib.request
from base64 import b64encode
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from broadcasts.models import ConsoleMessage, DeliveryReason
from subscribers.models import ChannelKind
from webhooks.signing import signed_headers

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
# A kept-alive connection idle longer than this is reopened before a send: a server may have closed it, and a
# send on a closed connection could not tell "never arrived" from "arrived, no answer".
IDLE_REUSE_SECONDS = 1.0
# Messages per second when the channel's settings give no `messages_per_second` (0 there means no limit).
# Messenger allows about 300 a second per page: well under it.
DEFAULT_RATES = {ChannelKind.MESSENGER: 100, ChannelKind.WEBHOOK: 100, ChannelKind.CONSOLE: 200}
# Messenger error codes (Graph API): https://developers.facebook.com/docs/messenger-platform/error-codes
THROTTLING_CODES = {4, 17, 32, 613}
PAGE_LEVEL = {(10, 1893063), (190, None), (368, None)}
UNREACHABLE = {(551, None), (100, 2018001), (200, 1545041)}


@dataclass(frozen=True)
class Message:
    text: str
    quick_replies: list = field(default_factory=list)
    message_tag: str = ""
    broadcast_id: int | None = None
    is_test: bool = False


@dataclass(frozen=True)
class Outcome:
    kind: str  # sent, failed, retry, throttled, unknown, stop; release (not tried: back to the queue)
    reason: str = ""
    detail: str = ""
    message_id: str = ""
    retry_after: float | None = None


SENT = "sent"
RELEASE = Outcome("release")
# After one of these, a group's messages not yet sent are not sent (they go back to the queue).
HALTING = ("stop", "throttled")


def rate_of(channel) -> float:
    """The channel's messages per second (0: no limit)."""
    value = (channel.settings or {}).get("messages_per_second")
    try:
        return max(0.0, float(value)) if value is not None else DEFAULT_RATES.get(channel.kind, 100)
    except (TypeError, ValueError):
        return DEFAULT_RATES.get(channel.kind, 100)


def connector_for(channel):
    return {
        ChannelKind.CONSOLE: ConsoleConnector,
        ChannelKind.MESSENGER: MessengerConnector,
        ChannelKind.WEBHOOK: WebhookConnector,
    }[channel.kind](channel)


class ConsoleConnector:
    """The "Live chat tester": the message is stored and shown on the console's Live chat page."""

    supports_quick_replies = True

    def __init__(self, channel):
        self.channel = channel

    def send(self, subscriber, message: Message) -> Outcome:
        return self.send_many([(subscriber, message, None)], lambda due: None)[0]

    def send_many(self, items, wait) -> list[Outcome]:
        """Store a group's messages: each at its slot when the channel has a rate, else all in one statement."""
        if len(items) > 1 and any(due is not None for _subscriber, _message, due in items):
            return [self.send_many([item], wait)[0] for item in items]
        if items and items[0][2] is not None:
            wait(items[0][2])
        stored = ConsoleMessage.objects.bulk_create(
            ConsoleMessage(
                subscriber=subscriber,
                broadcast_id=message.broadcast_id,
                text=message.text,
                quick_replies=message.quick_replies,
                is_test=message.is_test,
            )
            for subscriber, message, _due in items
        )
        return [Outcome(SENT, message_id=f"console-{message.pk}") for message in stored]

    def close(self):
        pass


@dataclass(frozen=True)
class _Response:
    status_code: int
    headers: object  # http.client.HTTPMessage: .get() ignores the case of the name
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400

    def json(self):
        return json.loads(self.content)


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    headers: dict  # {"Proxy-Authorization": "Basic …"} when the proxy URL has credentials, else empty


def _proxy_from(scheme: str, value: str) -> _Proxy | str:
    """The proxy that a `<scheme>_proxy` variable names, or why it cannot be used (shown as the pause reason)."""
    parts = urlsplit(value if "://" in value else f"http://{value}")
    try:
        port = parts.port or 80
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None:
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # never the password
        return _(
            "Broadcasts cannot go through the proxy %(proxy)s set in %(variable)s: give an http:// proxy address."
        ) % {"proxy": shown, "variable": f"{scheme.upper()}_PROXY"}
    headers = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + b64encode(credentials.encode()).decode("ascii")
    return _Proxy(parts.hostname, port, headers)


def _proxies_in(environment: dict) -> dict[str, _Proxy | str]:
    """The proxy for each target scheme that `environment` (urllib's getproxies()) sets, or why it cannot be used."""
    return {scheme: _proxy_from(scheme, environment[scheme]) for scheme in ("http", "https") if environment.get(scheme)}


def unusable_proxies() -> list[str]:
    """Why each proxy the environment sets cannot carry broadcasts (a system check says it at start)."""
    return [reason for reason in _proxies_in(urllib.request.getproxies()).values() if isinstance(reason, str)]


class _HttpConnector:
    """One kept-alive connection per sending thread (stdlib http.client: a fraction of the CPU of a full client).

    `send_many` sends a group concurrently, one thread per message: all of them
    were marked "sending" together just before (broadcasts.actions), so all are in
    flight at once. A connection error before the request went out is `retry`;
    anything after it is `unknown` (the channel may have it: never sent again).
    """

    supports_quick_replies = True

    def __init__(self, channel):
        self.channel = channel
        self.connect_timeout = CONNECT_TIMEOUT_SECONDS
        self.read_timeout = READ_TIMEOUT_SECONDS
        self._local = threading.local()
        self._opened: set[http.client.HTTPConnection] = set()  # every thread's, for close()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        # Read once: the proxy environment of the process when the worker made its connectors.
        self._environment = urllib.request.getproxies()
        self._proxies = _proxies_in(self._environment)
        self._routes: dict[tuple, _Proxy | str | None] = {}  # (scheme, host, port): its proxy, decided once

    def send(self, subscriber, message: Message) -> Outcome:  # pragma: no cover - defined by each connector
        raise NotImplementedError

    def send_many(self, items, wait) -> list[Outcome]:
        """Send (subscriber, message, due) items at once, each after its `due` slot (None: now); outcomes in order."""
        halted = threading.Event()

        def one(item):
            subscriber, message, due = item
            if due is not None and not halted.is_set():
                wait(due)
            if halted.is_set():
                return RELEASE
            outcome = self.send(subscriber, message)
            if outcome.kind in HALTING:
                halted.set()
            return outcome

        if len(items) <= 1:
            return [one(item) for item in items]
        if self._pool is None or self._pool_size < len(items):
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._pool_size = ThreadPoolExecutor(len(items), thread_name_prefix="send"), len(items)
        return list(self._pool.map(one, items))

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()

    def _proxy_for(self, parts) -> _Proxy | str | None:
        """The proxy for this target (None: connect directly), or why its proxy cannot be used."""
        key = (parts.scheme, parts.hostname, parts.port)
        if key not in self._routes:
            proxy = self._proxies.get(parts.scheme)
            # NO_PROXY entries name a host ("graph.local", ".local") or a host and port ("graph.local:8443"):
            # urllib compares the host alone and with its port; the host alone also keeps IPv6's brackets out.
            address = parts.netloc.rpartition("@")[2]
            bypass = proxy is not None and any(
                urllib.request.proxy_bypass_environment(host, self._environment)
                for host in (parts.hostname or "", address)
            )
            self._routes[key] = None if bypass else proxy
        return self._routes[key]

    def _connection(self, url, proxy: _Proxy | None) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        connections = self._local.__dict__.setdefault("connections", {})
        connection, last_used = connections.get(key, (None, 0.0))
        if connection is not None and time.monotonic() - last_used > IDLE_REUSE_SECONDS:
            self._forget(url, connection)
            connection = None
        if connection is None:
            host, port = (proxy.host, proxy.port) if proxy is not None else (parts.hostname, parts.port)
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self.connect_timeout, context=ssl.create_default_context()
                )
                if proxy is not None:  # connect() sends CONNECT, then TLS runs inside the tunnel
                    connection.set_tunnel(parts.hostname, parts.port or 443, headers=proxy.headers)
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
            with self._lock:
                self._opened.add(connection)
        connections[key] = (connection, time.monotonic())
        path = parts.path or "/"
        target = f"{path}?{parts.query}" if parts.query else path
        if proxy is not None and parts.scheme != "https":  # a forward proxy takes the absolute URI
            target = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{target}"
        return connection, target

    def _forget(self, url, connection) -> None:
        connection.close()
        with self._lock:
            self._opened.discard(connection)
        parts = urlsplit(url)
        self._local.__dict__.get("connections", {}).pop((parts.scheme, parts.hostname, parts.port), None)

    def _post(self, url, *, content: bytes, headers: dict) -> _Response | Outcome:
        parts = urlsplit(url)
        proxy = self._proxy_for(parts)
        if isinstance(proxy, str):
            return Outcome("stop", detail=proxy)
        connection, target = self._connection(url, proxy)
        if proxy is not None and parts.scheme != "https":  # no tunnel: the credentials go with each request
            headers = {**headers, **proxy.headers}
        if connection.sock is None:
            try:
                connection.connect()
                connection.sock.settimeout(self.read_timeout)
            except (OSError, http.client.HTTPException) as error:
                self._forget(url, connection)
                return Outcome("retry", detail=_("Could not connect: %(error)s") % {"error": str(error)[:200]})
        try:
            connection.request("POST", target, body=content, headers=headers)
            answer = connection.getresponse()
            response = _Response(answer.status, answer.headers, answer.read())
        except (OSError, http.client.HTTPException) as error:
            # The request may have reached the channel: it is not sent again.
            self._forget(url, connection)
            name = "Timeout" if isinstance(error, socket.timeout | TimeoutError) else error.__class__.__name__
            return Outcome("unknown", DeliveryReason.NO_ANSWER, _("No answer (%(error)s).") % {"error": name})
        if answer.will_close:
            self._forget(url, connection)
        return response


def _retry_after(response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class MessengerConnector(_HttpConnector):
    """Messenger's Send API with the page access token from the channel's settings (`page_access_token`)."""

    def send(self, subscriber, message: Message) -> Outcome:
        token = (self.channel.settings or {}).get("page_access_token", "")
        if not token:
            return Outcome("stop", detail=_("The channel has no page access token: add it in the channel's settings."))
        body = {
            "recipient": {"id": subscriber.foreign_id},
            # UPDATE: proactive, inside the 24-hour window; MESSAGE_TAG: an update outside it, with its tag.
            "messaging_type": "MESSAGE_TAG" if message.message_tag else "UPDATE",
            "message": {"text": message.text},
        }
        if message.message_tag:
            body["tag"] = message.message_tag
        if message.quick_replies:
            body["message"]["quick_replies"] = [
                {"content_type": "text", "title": reply["title"], "payload": reply["payload"]}
                for reply in message.quick_replies
            ]
        response = self._post(
            f"{settings.MESSENGER_GRAPH_URL.rstrip('/')}/me/messages?{urlencode({'access_token': token})}",
            content=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "Hexasubs-Broadcasts/1"},
        )
        if isinstance(response, Outcome):
            return response
        if response.is_success:
            try:
                return Outcome(SENT, message_id=str(response.json().get("message_id", ""))[:200])
            except ValueError:
                return Outcome(SENT)
        return self._error(response)

    def _error(self, response) -> Outcome:
        try:
            error = response.json().get("error", {})
            code, subcode = error.get("code"), error.get("error_subcode")
            text = str(error.get("message", ""))[:300]
        except (ValueError, AttributeError):
            code = subcode = None
            text = ""
        detail = f"HTTP {response.status_code}"
        detail += (f", code {code}" if code else "") + (f"/{subcode}" if subcode else "")
        detail = f"{detail}: {text}" if text else detail
        if response.status_code == 429 or code in THROTTLING_CODES:
            return Outcome("throttled", detail=detail, retry_after=_retry_after(response))
        if (code, subcode) in PAGE_LEVEL or (code, None) in PAGE_LEVEL:
            return Outcome("stop", detail=detail)
        if (code, subcode) in UNREACHABLE or (code, None) in UNREACHABLE:
            return Outcome("failed", DeliveryReason.UNREACHABLE, detail)
        if code == 10:  # the other permission errors of a send: outside the messaging window
            return Outcome("failed", DeliveryReason.OUTSIDE_WINDOW, detail)
        if response.status_code >= 500 or code in (1, 2):
            return Outcome("retry", detail=detail)
        return Outcome("failed", DeliveryReason.REJECTED, detail)


class WebhookConnector(_HttpConnector):
    """A signed POST to the bot runtime (`url` and `secret` in the channel's settings), which delivers it.

    Signed as webhook events are (webhooks.signing); `X-Hexasubs-Delivery` names the
    delivery, so a runtime that sees it twice (it never should) can tell.
    """

    def send(self, subscriber, message: Message) -> Outcome:
        channel_settings = self.channel.settings or {}
        url, secret = channel_settings.get("url", ""), channel_settings.get("secret", "")
        if not url or not secret:
            return Outcome("stop", detail=_("The channel has no url and secret for its bot runtime in its settings."))
        body = json.dumps(
            {
                "event": "broadcast.message",
                "broadcast": message.broadcast_id,
                "test": message.is_test,
                "subscriber": {"id": subscriber.pk, "channel": self.channel.name, "foreign_id": subscriber.foreign_id},
                "message": {"text": message.text, "quick_replies": message.quick_replies},
                "message_tag": message.message_tag or None,
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Hexasubs-Broadcasts/1",
            "X-Hexasubs-Event": "broadcast.message",
            "X-Hexasubs-Delivery": f"broadcast-{message.broadcast_id}-{subscriber.pk}",
            **signed_headers(secret, body),
        }
        response = self._post(url, content=body, headers=headers)
        if isinstance(response, Outcome):
            return response
        detail = f"HTTP {response.status_code}"
        if response.is_success:
            try:
                return Outcome(SENT, message_id=str(response.json().get("message_id", ""))[:200])
            except (ValueError, AttributeError):
                return Outcome(SENT)
        if response.status_code == 429:
            return Outcome("throttled", detail=detail, retry_after=_retry_after(response))
        if response.status_code in (401, 403):
            return Outcome("stop", detail=_("%(status)s: the bot runtime refuses our signature.") % {"status": detail})
        if response.status_code in (404, 410):
            return Outcome("failed", DeliveryReason.UNREACHABLE, detail)
        if response.status_code >= 500 or response.is_redirect:
            return Outcome("retry", detail=detail)
        return Outcome("failed", DeliveryReason.REJECTED, detail)
