"""What the views read off a request beyond Django's own API."""


def content_length(request) -> int:
    """The body's announced size, read before the body: a header that is not a number counts as no body,
    as Django's own request reads it."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
