"""How a message reaches a person on each kind of channel, and what each channel's answer means.

`connector_for(channel)` gives one connector per channel, reused for a worker's
batches (it keeps its HTTP connection open). `send()` returns an `Outcome`:

- sent: delivered (or handed to the channel);
- failed: permanent for this person (unreachable, outside the window, refused);
- retry: a temporary error, tried again later with backoff;
- throttled: the channel asks us to slow down; tried again later, and the whole channel waits;
- unknown: the request went out and no answer came: it may have been delivered, so it is never resent;
- stop: a page-level problem (blocked page, bad token, no address): the broadcast pauses with the reason.

Connection errors before anything was sent are `retry`; a timeout waiting for the
answer is `unknown`, so a message is never sent twice.
"""

import json
from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from broadcasts.models import ConsoleMessage, DeliveryReason
from subscribers.models import ChannelKind
from webhooks.signing import signed_headers

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
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
    kind: str  # sent, failed, retry, throttled, unknown, stop
    reason: str = ""
    detail: str = ""
    message_id: str = ""
    retry_after: float | None = None


SENT = "sent"


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
        stored = ConsoleMessage.objects.create(
            subscriber=subscriber,
            broadcast_id=message.broadcast_id,
            text=message.text,
            quick_replies=message.quick_replies,
            is_test=message.is_test,
        )
        return Outcome(SENT, message_id=f"console-{stored.pk}")

    def close(self):
        pass


class _HttpConnector:
    supports_quick_replies = True

    def __init__(self, channel):
        self.channel = channel
        self.client = httpx.Client(
            timeout=httpx.Timeout(
                connect=CONNECT_TIMEOUT_SECONDS,
                read=READ_TIMEOUT_SECONDS,
                write=READ_TIMEOUT_SECONDS,
                pool=CONNECT_TIMEOUT_SECONDS,
            ),
            follow_redirects=False,
        )

    def close(self):
        self.client.close()

    def _post(self, url, **kwargs) -> httpx.Response | Outcome:
        try:
            return self.client.post(url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            return Outcome("retry", detail=_("Could not connect: %(error)s") % {"error": str(error)[:200]})
        except httpx.TransportError as error:
            # The request may have reached the channel: it is not sent again.
            return Outcome(
                "unknown",
                DeliveryReason.NO_ANSWER,
                _("No answer (%(error)s).") % {"error": error.__class__.__name__},
            )


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
            f"{settings.MESSENGER_GRAPH_URL.rstrip('/')}/me/messages", params={"access_token": token}, json=body
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
