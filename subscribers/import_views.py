"""Import subscribers from a CSV file, and export them: the Import page, one import's page, the Export dialog.

An import is a page, not a dialog: upload (streamed to IMPORT_DIR, never held in
memory), then its settings with a preview of the first rows as they will be read,
then a dry run or the import itself, whose progress the page polls. Exports are
streamed downloads of exactly what the Subscribers page's filter (or its ticked
rows) selects.
"""

import csv
from datetime import date
from itertools import zip_longest

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from hexasubs.dialogs import render_dialog
from hexasubs.http import content_length
from subscribers import exports, imports
from subscribers.actions import ImportBusy, cancel_subscriber_import, start_subscriber_import
from subscribers.import_forms import ExportForm, ImportSettingsForm, UploadForm
from subscribers.models import SubscriberImport
from subscribers.queries import count_subscribers, subscribers_matching

VIEW = "subscribers.view_subscriber"
IMPORT = "subscribers.import_subscribers"
ADD_LABELS = "labels.add_label"
# The Import page lists this many of the latest imports.
IMPORTS_SHOWN = 20
# An import's page lists this many of its problems; the rejected-rows CSV has them all.
PROBLEMS_SHOWN = 50
# Multipart framing and the form's other fields, on top of the file itself.
UPLOAD_SLACK = 64 * 1024


class StoredUpload(UploadedFile):
    """An uploaded file already written to IMPORT_DIR by ImportUploadHandler."""

    def __init__(self, stored: imports.StoredFile):
        super().__init__(file=None, name=stored.original_name, size=stored.size, content_type="text/csv")
        self.stored = stored


class ImportUploadHandler(FileUploadHandler):
    """Writes the upload straight to IMPORT_DIR as it arrives, and stops it past the upload limit."""

    problem = ""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.stored = imports.StoredFile(self.file_name, limit=imports.upload_limit())

    def receive_data_chunk(self, raw_data, start):
        try:
            self.stored.write(raw_data)
        except imports.FileProblem as problem:
            self.problem = str(problem)
            raise StopUpload(connection_reset=True) from None

    def file_complete(self, file_size):
        self.stored.close()
        return StoredUpload(self.stored)

    def upload_interrupted(self):
        self.discard()

    def discard(self):
        """Delete what arrived: an upload refused (an empty file, no file, too large) leaves nothing behind."""
        if getattr(self, "stored", None) is not None:
            self.stored.discard()


@csrf_exempt  # checked by _upload, once the upload handler is in place (Django's documented way)
@require_http_methods(["GET", "POST"])
@permission_required(IMPORT, raise_exception=True)
def import_page(request):
    """The Import page: upload a CSV file, and the latest imports."""
    if request.method == "POST":
        if content_length(request) > imports.upload_limit() + UPLOAD_SLACK:
            return _import_page(request, UploadForm(), problem=_too_large(), status=413)
        handler = ImportUploadHandler(request)
        request.upload_handlers = [handler]
        return _upload(request, handler)
    return _import_page(request, UploadForm())


def _too_large() -> str:
    return _("The file is larger than %(limit)s MB, the upload limit. Split it, or ask for a higher limit.") % {
        "limit": imports.upload_limit() // (1024 * 1024)
    }


@csrf_protect
def _upload(request, handler):
    form = UploadForm(request.POST, request.FILES)
    if handler.problem:
        handler.discard()
        return _import_page(request, UploadForm(), problem=handler.problem, status=413)
    if not form.is_valid():
        handler.discard()
        return _import_page(request, form, status=422)
    try:
        job = imports.record_upload(form.cleaned_data["file"].stored, by=request.user)
    except imports.FileProblem as problem:
        return _import_page(request, UploadForm(), problem=str(problem), status=422)
    return redirect(job.get_absolute_url())


def _import_page(request, form, *, problem="", status=200):
    context = {
        "form": form,
        "problem": problem,
        "limit_mb": imports.upload_limit() // (1024 * 1024),
        "limit_bytes": imports.upload_limit(),
        "jobs": SubscriberImport.objects.select_related("created_by")[:IMPORTS_SHOWN],
        "columns": imports.COLUMNS,
    }
    return render(request, "subscribers/import.html", context, status=status)


@require_http_methods(["GET", "POST"])
@permission_required(IMPORT, raise_exception=True)
def import_detail(request, pk):
    """One import: its settings and preview until it starts, then its progress, and its report once over."""
    job = get_object_or_404(SubscriberImport.objects.select_related("created_by", "channel"), pk=pk)
    if job.status == SubscriberImport.Status.DRAFT:
        return _settings(request, job)
    if request.method == "POST":
        if not job.file_name:  # deleted by remove_old_import_files: nothing left to import
            messages.error(request, _("The file of %(import)s was deleted: upload it again.") % {"import": job})
        elif request.POST.get("action") == "change" and job.is_finished and job.dry_run:
            SubscriberImport.objects.filter(pk=job.pk, status__in=SubscriberImport.FINISHED).update(
                status=SubscriberImport.Status.DRAFT
            )
        elif request.POST.get("action") == "import" and job.is_finished and job.dry_run:
            return _start(request, job, dry_run=False)
        return redirect(job.get_absolute_url())
    context = {"job": job, "problems": _problems(job)}
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "subscribers/import_detail.html#status", context)
        if job.is_finished:  # the last poll: refresh what shows subscribers
            trigger_client_event(response, "subscribers-changed")
        return response
    return render(request, "subscribers/import_detail.html", context)


def _problems(job):
    return list(job.problems.order_by("row")[:PROBLEMS_SHOWN]) if job.is_finished else []


def _settings(request, job):
    may_create_labels = request.user.has_perm(ADD_LABELS)
    if request.method == "POST":
        form = ImportSettingsForm(request.POST, instance=job, may_create_labels=may_create_labels)
        if form.is_valid():
            job = form.save()
            action = request.POST.get("action")
            if action in ("dry_run", "import"):
                return _start(request, job, dry_run=action == "dry_run")
            form = ImportSettingsForm(instance=job, may_create_labels=may_create_labels)
            status = 200
        else:
            status = 422
    else:
        form, status = ImportSettingsForm(instance=job, may_create_labels=may_create_labels), 200
    job.refresh_from_db()
    shown = imports.preview(job)
    context = {
        "job": job,
        "form": form,
        "preview": shown,
        "columns": list(zip_longest(form.column_fields(), shown.samples[: len(job.header)], fillvalue="")),
        "field_titles": [imports.COLUMN_TITLES[name] for name in job.fields],
        "wrapping": ["foreign_id", "first_name", "last_name", "labels"],
    }
    template = "subscribers/import_detail.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#settings"
    return render(request, template, context, status=status)


def _start(request, job, *, dry_run):
    try:
        start_subscriber_import(job, dry_run=dry_run, by=request.user, language=get_language())
    except ImportBusy as busy:
        running = busy.running
        messages.error(
            request,
            _("You are already running %(import)s: wait for it to end, or cancel it.") % {"import": running}
            if running
            else _("You are already running an import: wait for it to end, or cancel it."),
        )
    return redirect(job.get_absolute_url())


@require_POST
@permission_required(IMPORT, raise_exception=True)
def import_cancel(request, pk):
    job = get_object_or_404(SubscriberImport, pk=pk)
    if cancel_subscriber_import(job, by=request.user):
        messages.success(request, _("%(import)s cancelled: what it imported so far stays.") % {"import": job})
    else:
        messages.warning(request, _("%(import)s had already ended.") % {"import": job})
    if request.htmx:
        job.refresh_from_db()
        response = render(request, "subscribers/import_detail.html#status", {"job": job, "problems": _problems(job)})
        return trigger_client_event(response, "subscribers-changed")
    return redirect(job.get_absolute_url())


@permission_required(IMPORT, raise_exception=True)
def import_rejects(request, pk):
    """The rejected rows as they were written, with the reason in a last column: to fix and import again."""
    job = get_object_or_404(SubscriberImport, pk=pk)
    if not job.file_name:  # deleted by remove_old_import_files
        messages.error(request, _("The file of %(import)s was deleted: upload it again.") % {"import": job})
        return redirect(job.get_absolute_url())
    writer = csv.writer(_Echo(), delimiter=job.delimiter, lineterminator="\r\n")
    bom = imports.file_has_bom(job)

    def lines():
        yield imports.UTF8_BOM.decode() if bom else ""
        for row in imports.rejected_rows(job):
            yield writer.writerow(row)

    name = job.original_name.rsplit(".", 1)[0] or "subscribers"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_ascii(name)}-rejected.csv"'
    return response


class _Echo:
    def write(self, value):
        return value


def _ascii(name: str) -> str:
    return "".join(char if char.isascii() and (char.isalnum() or char in "-_.") else "_" for char in name)[:100]


# --- Export ---------------------------------------------------------------------------------------


@permission_required(VIEW, raise_exception=True)
def export_dialog(request):
    """The Export dialog (hexasubs.dialogs): what is exported, in which format, and the download."""
    data = request.GET.copy()
    data.setdefault("format", "csv")
    form = ExportForm(data)
    context = {"form": form, "back_url": request.GET.get("next") or "", "step": "choose"}
    if not form.is_valid():
        context["step"] = "problem"
        return render_dialog(request, "subscribers/export.html#content", context, title=_("Export"), status=422)
    selection = form.selection()
    context["total"] = count_subscribers(subscribers_matching(selection), filtered=True)
    context["ticked"] = "ids" in selection
    return render_dialog(request, "subscribers/export.html#content", context, title=_("Export subscribers"))


@permission_required(VIEW, raise_exception=True)
def export_download(request):
    """The selected subscribers as a CSV file, streamed: the download starts before the first query."""
    form = ExportForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "back_url": "", "step": "problem"}
        return render_dialog(request, "subscribers/export.html#content", context, title=_("Export"), status=422)
    excel = form.cleaned_data["format"] == "excel"
    chunks = exports.csv_chunks(subscribers_matching(form.selection()), delimiter=";" if excel else ",", bom=excel)
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="subscribers-{date.today().isoformat()}.csv"'
    return response
