"""Errors the API answers with its own status and shape (handlers in api/views.py)."""


class BodyTooLarge(Exception):
    def __init__(self, limit_bytes: int):
        super().__init__(limit_bytes)
        self.limit_bytes = limit_bytes


class InvalidInput(Exception):
    """Bad input found outside the schemas: answered like pydantic's errors, a list of {loc, msg, type}."""

    def __init__(self, loc, message):
        super().__init__(message)
        self.loc, self.message = loc, message


class UnknownLabelNames(Exception):
    def __init__(self, names):
        super().__init__(", ".join(names))
        self.names = names


class UnknownSegmentName(Exception):
    def __init__(self, name):
        super().__init__(name)
        self.name = name
