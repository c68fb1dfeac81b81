"""Cells of the CSV files Hexasubs writes, kept from running as formulas in a spreadsheet.

A spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return as a
formula (OWASP's "CSV injection"): such a cell is written with a leading `'`, so `=HYPERLINK(…)`
stays text in Excel and LibreOffice. Two kinds of file are written:

- files that import back (the subscribers export, the import's rejected rows): the import takes
  exactly that `'` away again (`restore`). So a cell already starting with `'` before a formula
  gets a second one, and plain numbers such as the time zone `-5` are left alone: no spreadsheet
  runs them, and analysts need them as numbers.
- reports that are only read (a broadcast's recipients, `round_trip=False`): every cell starting
  like a formula gets the `'`, numbers included, and nothing is read back.
"""

import re

FORMULA_STARTS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def neutralise(value: str, *, round_trip: bool = True) -> str:
    """The cell as written: with a leading `'` when a spreadsheet would run it as a formula.

    With `round_trip` (a file that imports back), `restore` gives `value` back exactly.
    """
    if not round_trip:
        return "'" + value if value[:1] in FORMULA_STARTS else value
    if value and value.lstrip("'")[:1] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def restore(value: str) -> str:
    """The cell as imported: without the `'` that `neutralise` added, and nothing else taken away."""
    if value[:1] == "'" and value.lstrip("'")[:1] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(value[1:]):
        return value[1:]
    return value
