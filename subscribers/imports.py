"""Subscriber CSV files: the one format both ways, reading an uploaded file, and checking each row.

The format: UTF-8 text (a byte order mark is skipped), a header row, cells separated by commas,
semicolons or tabs, the columns of COLUMNS in any order; `channel` and `foreign_id` are required,
other columns are reported and ignored. `labels` holds label names (or titles) separated by `|`;
dates are ISO 8601. Exports write the same, so an export imports back unchanged.

A cell a spreadsheet would run as a formula is exported with a leading `'` (`neutralise`), and
imports take exactly that prefix away again (`restore`): both live in `hexasubs.csvcells`.

Nothing here writes to subscribers or labels: `subscribers.actions` applies what this checks.
Files are read as bytes, one row at a time, so the import can resume from the byte where its
last committed chunk ended, and a 200 MB file is never held in memory.
"""

import codecs
import csv
import re
import tempfile
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from operator import itemgetter
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_countries import countries

from hexasubs.csvcells import neutralise, restore
from labels.models import Label
from labels.names import normalise_title
from subscribers.models import Channel, Gender, SubscriberImport
from subscribers.search import search_name
from subscribers.validators import validate_locale, validate_timezone

COLUMNS = [
    "channel",
    "foreign_id",
    "first_name",
    "last_name",
    "gender",
    "locale",
    "timezone",
    "country",
    "labels",
    "created_at",
    "updated_at",
    "last_seen_at",
]
COLUMN_TITLES = {
    "channel": gettext_lazy("Channel"),
    "foreign_id": gettext_lazy("Foreign id"),
    "first_name": gettext_lazy("First name"),
    "last_name": gettext_lazy("Last name"),
    "gender": gettext_lazy("Gender"),
    "locale": gettext_lazy("Locale"),
    "timezone": gettext_lazy("Time zone"),
    "country": gettext_lazy("Country"),
    "labels": gettext_lazy("Labels"),
    "created_at": gettext_lazy("Created"),
    "updated_at": gettext_lazy("Updated"),
    "last_seen_at": gettext_lazy("Last seen"),
}
# The profile fields an import may change on an existing subscriber (the dates are read for new ones only).
PROFILE_COLUMNS = ["first_name", "last_name", "gender", "locale", "timezone", "country"]
DATE_COLUMNS = ["created_at", "updated_at", "last_seen_at"]
# What the staging table holds, in this order, after the import's id, the row number and its offset.
STAGED_COLUMNS = ["channel_id", "foreign_id", *PROFILE_COLUMNS, "search_name", *DATE_COLUMNS]
LABEL_SEPARATOR = "|"
DELIMITERS = [
    (",", gettext_lazy("Comma ( , )")),
    (";", gettext_lazy("Semicolon ( ; ), as Excel writes in French")),
    ("\t", gettext_lazy("Tab")),
]
UTF8_BOM = codecs.BOM_UTF8
# Other names people give the columns, found when guessing the mapping (compared lowercase, `_` for spaces).
ALIASES = {
    "firstname": "first_name",
    "first": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "last": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "sex": "gender",
    "language": "locale",
    "lang": "locale",
    "time_zone": "timezone",
    "tz": "timezone",
    "label": "labels",
    "tags": "labels",
    "created": "created_at",
    "updated": "updated_at",
    "last_seen": "last_seen_at",
    "psid": "foreign_id",
    "user_id": "foreign_id",
}
# Rows checked, then imported, per transaction (measured in bench/csv_import.py).
CHUNK_ROWS = 5_000
PREVIEW_ROWS = 10
# How much of a new file is checked for being UTF-8 CSV before anything else happens.
SNIFF_BYTES = 64 * 1024

# --- Storing and inspecting a file ------------------------------------------------------------------


class FileProblem(Exception):
    """A file that cannot be imported at all, with the reason in the operator's words."""


def import_dir() -> Path:
    path = Path(settings.IMPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_limit() -> int:
    return settings.IMPORT_UPLOAD_LIMIT_MB * 1024 * 1024


class StoredFile:
    """A file being written to IMPORT_DIR chunk by chunk: counts its bytes and lines, refuses it past the limit.

    Used by the upload handler and by the import command alike (which has no limit: the file is the server's).
    """

    def __init__(self, original_name: str, *, limit: int | None = None):
        self.limit = limit
        self.original_name = Path(original_name or "subscribers.csv").name[:255]
        # Closed by close() or discard(): the file outlives this object, for the import to read.
        self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=import_dir(), prefix="import-", suffix=".csv", delete=False
        )
        self.name = Path(self._file.name).name
        self.size = 0
        self.lines = 0
        self.last_byte = b""

    @property
    def path(self) -> Path:
        return import_dir() / self.name

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            self.discard()
            raise FileProblem(
                _("The file is larger than %(limit)s MB, the upload limit. Split it, or ask for a higher limit.")
                % {"limit": settings.IMPORT_UPLOAD_LIMIT_MB}
            )
        self.lines += chunk.count(b"\n")
        if chunk:
            self.last_byte = chunk[-1:]
        self._file.write(chunk)

    def close(self) -> None:
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    @property
    def estimated_rows(self) -> int:
        """Lines under the header (a cell spanning lines counts twice: it is an estimate)."""
        lines = self.lines + (1 if self.size and self.last_byte != b"\n" else 0)
        return max(0, lines - 1)


def store_file(source, original_name: str, *, limit: int | None = None) -> StoredFile:
    """Copy a binary file object into IMPORT_DIR, 1 MB at a time. Raises FileProblem past `limit` bytes."""
    stored = StoredFile(original_name, limit=limit)
    try:
        while chunk := source.read(1024 * 1024):
            stored.write(chunk)
    finally:
        stored.close()
    return stored


@dataclass
class FileLayout:
    header: list[str]
    delimiter: str
    data_offset: int


def inspect_file(path: Path, delimiter: str | None = None) -> FileLayout:
    """Check that the file looks like UTF-8 CSV with a header, and find its separator and its first row.

    Raises FileProblem with what to do about it.
    """
    with open(path, "rb") as file:
        head = file.read(SNIFF_BYTES)
    if not head.strip(UTF8_BOM + b" \r\n\t"):
        raise FileProblem(_("The file is empty: it needs a header row, then one row per subscriber."))
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileProblem(
            _("This is a spreadsheet file, not CSV. Save it as “CSV UTF-8” from your spreadsheet, then upload that.")
        )
    if b"\x00" in head:
        raise FileProblem(_("This is not a text file. Upload a CSV file saved as UTF-8."))
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError as error:
        line = head[: error.start].count(b"\n") + 1
        raise FileProblem(
            _(
                "The file is not UTF-8 text (byte 0x%(byte)02X on line %(line)s): it was probably saved in another "
                "encoding, such as Windows-1252. Save it as “CSV UTF-8” from your spreadsheet and upload it again."
            )
            % {"byte": head[error.start], "line": line}
        ) from None
    offset = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
    first_line = head[offset:].split(b"\n", 1)[0].decode("utf-8", "replace")
    delimiter = delimiter or sniff_delimiter(first_line)
    record = next(records(path, delimiter, offset, 1), None)
    if record is None or record.cells is None or not any(map(str.strip, record.cells)):
        raise FileProblem(_("The first row of the file is empty: it must name the columns."))
    return FileLayout([cell.strip() for cell in record.cells], delimiter, record.end)


def record_upload(stored: StoredFile, *, by=None) -> SubscriberImport:
    """Inspect a stored file and record it as an import not started yet, with the columns' mapping guessed.

    Raises FileProblem, and deletes the file, when it cannot be imported.
    """
    try:
        layout = inspect_file(stored.path)
    except FileProblem:
        stored.discard()
        raise
    return SubscriberImport.objects.create(
        file_name=stored.name,
        original_name=stored.original_name,
        size=stored.size,
        estimated_rows=stored.estimated_rows,
        delimiter=layout.delimiter,
        header=layout.header,
        data_offset=layout.data_offset,
        read_offset=layout.data_offset,
        mapping=guess_mapping(layout.header),
        created_by=by,
    )


def read_again(job: SubscriberImport, delimiter: str) -> None:
    """Read the header again with another separator (the operator's choice); the mapping is guessed anew."""
    layout = inspect_file(import_dir() / job.file_name, delimiter)
    if layout.header != job.header:
        job.mapping = guess_mapping(layout.header)
    job.header, job.delimiter, job.data_offset = layout.header, layout.delimiter, layout.data_offset


def sniff_delimiter(line: str) -> str:
    """The separator of a header line: whichever of comma, semicolon and tab it has most of, outside quotes."""
    outside = re.sub(r'"[^"]*"', "", line)
    counts = {delimiter: outside.count(delimiter) for delimiter, _label in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def guess_mapping(header: list[str]) -> list[str]:
    """The field each column fills, from its name ('' when none or when an earlier column took it)."""
    mapping, taken = [], set()
    for title in header:
        key = re.sub(r"[\s\-]+", "_", title.strip().lower())
        field_name = key if key in COLUMNS else ALIASES.get(key, "")
        if field_name in taken:
            field_name = ""
        taken.add(field_name)
        mapping.append(field_name)
    return mapping


# --- Reading rows -----------------------------------------------------------------------------------


@dataclass
class Record:
    """One CSV record: its row number (the header is row 1), where it starts and ends in the file, its cells."""

    row: int
    offset: int
    end: int
    cells: list[str] | None  # None when the row cannot be read as CSV
    not_utf8: bool = False
    error: str = ""


def records(path: Path, delimiter: str, offset: int, first_row: int) -> Iterator[Record]:
    """The file's records from byte `offset` on, numbered from `first_row`, each with the byte where it ends.

    Lines are read as bytes and decoded one by one (a UTF-8 line break never falls
    inside a character), so the position after each record is exact: an import
    resumes from there.
    """
    with open(path, "rb") as file:
        file.seek(offset)
        position = offset
        not_utf8 = False

        def lines():
            nonlocal position, not_utf8
            for raw in file:
                position += len(raw)
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    not_utf8 = True
                    yield raw.decode("utf-8", "replace")

        reader = csv.reader(lines(), delimiter=delimiter)
        row, start = first_row, offset
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield Record(row, start, position, None, not_utf8, str(error))
            else:
                yield Record(row, start, position, cells, not_utf8)
            row, start, not_utf8 = row + 1, position, False


def record_at(file, offset: int, delimiter: str) -> list[str]:
    """The cells of the record starting at byte `offset` of an open binary file (for the rejected-rows CSV)."""
    file.seek(offset)

    def lines():
        for raw in file:
            yield raw.decode("utf-8", "replace")

    try:
        return next(csv.reader(lines(), delimiter=delimiter), [])
    except csv.Error:
        file.seek(offset)
        return [file.readline().decode("utf-8", "replace").rstrip("\r\n")]


# --- Checking rows ----------------------------------------------------------------------------------


class CellError(ValueError):
    """A cell that cannot be imported; the message says why."""


@cache
def _locale_problem(value: str) -> str:
    try:
        validate_locale(value)
    except ValidationError as error:
        return error.messages[0]
    return ""


@cache
def _timezone_problem(value: str) -> str:
    try:
        validate_timezone(value)
    except ValidationError as error:
        return error.messages[0]
    return ""


@cache
def _country_codes() -> frozenset[str]:
    return frozenset(code for code, _name in countries)


GENDERS = frozenset(value for value in Gender.values if value)


@dataclass
class CheckedRow:
    row: int
    offset: int
    values: dict
    label_names: list[str] | None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (column as the file names it, reason)

    @property
    def staged(self) -> tuple:
        return _staged_values(self.values)


_staged_values = itemgetter(*STAGED_COLUMNS)


class RowChecker:
    """Checks rows as an import reads them: which cells fill which field, and whether each value is valid."""

    def __init__(self, job):
        self.header = job.header
        self.width = len(job.header)
        self.columns = [(index, name) for index, name in enumerate(job.mapping) if name]
        # Each mapped column's checker, looked up once rather than once a cell.
        self.checks = [(index, getattr(self, f"_{name}"), job.header[index]) for index, name in self.columns]
        self.channels = dict(Channel.objects.values_list("name", "pk"))
        self.default_channel = job.channel_id
        self.zone = timezone.get_current_timezone()
        self.blank = {
            **dict.fromkeys(STAGED_COLUMNS, ""),
            **dict.fromkeys(DATE_COLUMNS),
            "channel_id": self.default_channel,
        }

    def check(self, record: Record) -> CheckedRow:
        checked = CheckedRow(record.row, record.offset, self.blank.copy(), None)
        if record.cells is None:
            checked.errors.append(("", _("The row cannot be read as CSV (%(error)s).") % {"error": record.error}))
            return checked
        if record.not_utf8:
            checked.errors.append(("", _("The row is not UTF-8 text: save the file as “CSV UTF-8”.")))
            return checked
        if len(record.cells) != self.width:
            checked.errors.append(
                (
                    "",
                    _("The row has %(cells)s cells where the header has %(columns)s.")
                    % {"cells": len(record.cells), "columns": self.width},
                )
            )
            return checked
        cells = record.cells
        for index, check, column in self.checks:
            cell = cells[index]
            try:
                check(checked, restore(cell) if cell[:1] == "'" else cell)
            except CellError as error:
                checked.errors.append((column, str(error)))
        if not checked.errors:
            values = checked.values
            values["search_name"] = search_name(values["first_name"], values["last_name"])
        return checked

    def _channel(self, checked, value):
        name = value.strip()
        if not name and self.default_channel:
            return
        if name not in self.channels:
            if not name:
                raise CellError(_("The channel is missing."))
            raise CellError(
                _("There is no channel named “%(value)s” (channels: %(names)s).")
                % {"value": name, "names": ", ".join(sorted(self.channels))}
            )
        checked.values["channel_id"] = self.channels[name]

    def _foreign_id(self, checked, value):
        value = value.strip()
        if not value:
            raise CellError(_("The foreign id is missing."))
        checked.values["foreign_id"] = _at_most(value, 255)

    def _first_name(self, checked, value):
        checked.values["first_name"] = _at_most(value, 255)

    def _last_name(self, checked, value):
        checked.values["last_name"] = _at_most(value, 255)

    def _gender(self, checked, value):
        value = value.strip().lower()
        if value and value not in GENDERS:
            raise CellError(
                _("“%(value)s” is not a gender: write male, female or other, or leave the cell empty.")
                % {"value": value}
            )
        checked.values["gender"] = value

    def _locale(self, checked, value):
        value = value.strip()
        if value and (problem := _locale_problem(value)):
            raise CellError(problem)
        checked.values["locale"] = value

    def _timezone(self, checked, value):
        value = value.strip()
        if value and (problem := _timezone_problem(value)):
            raise CellError(problem)
        checked.values["timezone"] = value

    def _country(self, checked, value):
        value = value.strip().upper()
        if value and value not in _country_codes():
            raise CellError(
                _("“%(value)s” is not a country code: write two letters such as FR or US.") % {"value": value}
            )
        checked.values["country"] = value

    def _labels(self, checked, value):
        names = []
        for part in value.split(LABEL_SEPARATOR):
            name = part.strip()
            if name and name not in names:
                names.append(name)
        checked.label_names = names

    def _date(self, checked, name, value):
        value = value.strip()
        if not value:
            return
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise CellError(
                _("“%(value)s” is not an ISO 8601 date such as 2026-11-25 or 2026-11-25T14:02:00Z.") % {"value": value}
            ) from None
        if moment.tzinfo is None:
            try:
                moment = timezone.make_aware(moment, self.zone)
            except (ValueError, OverflowError, zoneinfo.ZoneInfoNotFoundError):  # pragma: no cover
                raise CellError(_("“%(value)s” is not a date this server can store.") % {"value": value}) from None
        checked.values[name] = moment

    def _created_at(self, checked, value):
        self._date(checked, "created_at", value)

    def _updated_at(self, checked, value):
        self._date(checked, "updated_at", value)

    def _last_seen_at(self, checked, value):
        self._date(checked, "last_seen_at", value)


def _at_most(value: str, length: int) -> str:
    if len(value) > length:
        raise CellError(
            _("It is %(length)s characters long; %(limit)s at most.") % {"length": len(value), "limit": length}
        )
    return value


@dataclass
class Batch:
    """The next rows of a file, checked: those to stage, those rejected, and where reading stopped."""

    rows: list[CheckedRow]
    rejected: list[CheckedRow]
    end: int
    last_row: int
    read: int
    finished: bool


def read_batch(job, checker: RowChecker, limit: int | None = None) -> Batch:
    """Check up to `limit` rows (CHUNK_ROWS) of the job's file from its `read_offset` (blank lines are skipped)."""
    limit = limit or CHUNK_ROWS
    batch = Batch([], [], job.read_offset, job.last_row, 0, True)
    for record in records(import_dir() / job.file_name, job.delimiter, job.read_offset, job.last_row + 1):
        batch.end, batch.last_row = record.end, record.row
        if record.cells is not None and not any(map(str.strip, record.cells)):
            continue
        checked = checker.check(record)
        (batch.rejected if checked.errors else batch.rows).append(checked)
        batch.read += 1
        if batch.read >= limit:
            batch.finished = False
            break
    return batch


@dataclass
class PreviewCell:
    field: str
    text: str
    problem: str = ""
    labels: list[tuple[str, bool]] = field(default_factory=list)  # (name, whether such a label exists)


@dataclass
class PreviewRow:
    row: int
    cells: list[PreviewCell]
    problem: str = ""


@dataclass
class Preview:
    rows: list[PreviewRow]
    samples: list[str]  # the first row's cells, one per column of the file


def preview(job, rows: int = PREVIEW_ROWS) -> Preview:
    """The first rows of the file as the import will read them, with every problem found in each."""
    checker, index = RowChecker(job), LabelIndex()
    shown = Preview([], [])
    for record in records(import_dir() / job.file_name, job.delimiter, job.data_offset, 2):
        if record.cells is not None and not any(map(str.strip, record.cells)):
            continue
        checked = checker.check(record)
        problems = dict(reversed(checked.errors))
        line = PreviewRow(record.row, [], problems.pop("", ""))
        if not line.problem:
            for position, name in checker.columns:
                cell = PreviewCell(name, restore(record.cells[position]), problems.get(job.header[position], ""))
                if name == "labels":
                    cell.labels = [(label, index.find(label) is not None) for label in checked.label_names or ()]
                line.cells.append(cell)
        if not shown.rows and record.cells:
            shown.samples = [restore(cell) for cell in record.cells]
        shown.rows.append(line)
        if len(shown.rows) >= rows:
            break
    return shown


# --- Labels named in a file -------------------------------------------------------------------------


class LabelIndex:
    """Labels as a file may name them: by name, or else by title (ignoring case)."""

    def __init__(self):
        self.by_name, self.by_title = {}, {}
        for pk, name, title in Label.objects.values_list("pk", "name", "title"):
            self.add(pk, name, title)

    def add(self, pk: int, name: str, title: str) -> None:
        self.by_name[name] = pk
        self.by_title[normalise_title(title).casefold()] = pk

    def find(self, text: str) -> int | None:
        found = self.by_name.get(text)
        return found if found is not None else self.by_title.get(normalise_title(text).casefold())


# --- The rejected rows, to fix and import again -----------------------------------------------------

REASON_COLUMN = "error"


def rejected_rows(job) -> Iterator[list[str]]:
    """The header of the job's file with a reason column, then each rejected row as it was written, in file order.

    Cells are exported as any export is (`neutralise`), so the file is safe to open
    in a spreadsheet and imports back as the original would have.
    """
    yield [*(neutralise(cell) for cell in job.header), REASON_COLUMN]
    problems = job.problems.filter(kind="rejected").order_by("row").values_list("offset", "columns", "reason")
    with open(import_dir() / job.file_name, "rb") as file:
        for offset, columns, reason in problems.iterator(chunk_size=2_000):
            cells = record_at(file, offset, job.delimiter)
            text = f"{columns}: {reason}" if columns else reason
            yield [*(neutralise(restore(cell)) for cell in cells), neutralise(text)]


def file_has_bom(job) -> bool:
    with open(import_dir() / job.file_name, "rb") as file:
        return file.read(len(UTF8_BOM)) == UTF8_BOM


def write_rejected_rows(job, path: Path) -> None:
    """The rejected rows CSV (as the Import page's download) written to `path`, for the import command."""
    with open(path, "w", encoding="utf-8", newline="") as file:
        if file_has_bom(job):
            file.write(UTF8_BOM.decode())
        writer = csv.writer(file, delimiter=job.delimiter, lineterminator="\r\n")
        writer.writerows(rejected_rows(job))
