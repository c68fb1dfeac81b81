"""Import subscribers from a CSV file, for scripts: the Import page's engine, run in the foreground."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import override

from hexasubs.priority import lower_own_priority
from subscribers import imports
from subscribers.actions import cancel_subscriber_import, run_subscriber_import, start_subscriber_import
from subscribers.import_forms import ImportSettingsForm
from subscribers.models import Channel, SubscriberImport

MODES = {
    "upsert": SubscriberImport.Mode.UPSERT,
    "create": SubscriberImport.Mode.CREATE,
    "labels-add": SubscriberImport.Mode.LABELS_ADD,
    "labels-remove": SubscriberImport.Mode.LABELS_REMOVE,
}
# Exit statuses: 1 when nothing could be imported (a bad file or option), REJECTED when some rows were.
REJECTED = 3
PROGRESS_EVERY = 50_000


class Command(BaseCommand):
    help = (
        "Import subscribers from a UTF-8 CSV file with a header (the Export's format), in chunks that a killed "
        "run resumes (in a db_worker). Prints progress and the summary; rows rejected are written to "
        "FILE.rejected.csv beside the file, and the exit status is 3."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--mode", choices=list(MODES), default="upsert")
        parser.add_argument(
            "--create-labels",
            action="store_true",
            help="Create the labels the file names that do not exist (else their rows are rejected).",
        )
        parser.add_argument(
            "--replace-labels",
            action="store_true",
            help="The file's labels replace each subscriber's labels (else they are added).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check every row and say what would change; change nothing."
        )
        parser.add_argument(
            "--channel", metavar="NAME", help="The channel of every row, for a file without a channel column."
        )
        parser.add_argument(
            "--delimiter", choices=[",", ";", "tab"], help="The separator (guessed from the header otherwise)."
        )

    def handle(self, *args, file, mode, create_labels, replace_labels, dry_run, channel, delimiter, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"There is no file {path}.")
        lower_own_priority()  # a batch job, as a worker's: the web processes keep their share of the cores
        with override("en"):
            try:
                with open(path, "rb") as source:
                    job = imports.record_upload(imports.store_file(source, path.name))
                if delimiter:
                    imports.read_again(job, "\t" if delimiter == "tab" else delimiter)
            except imports.FileProblem as problem:
                raise CommandError(str(problem)) from None
            self._configure(job, mode, create_labels, replace_labels, channel)
            ignored = [title for title, field in zip(job.header, job.mapping, strict=True) if not field]
            if ignored:
                self.stderr.write(f"Columns ignored: {', '.join(ignored)}.")
            job = start_subscriber_import(job, dry_run=dry_run, background=False)
            self.stdout.write(
                f"{job}: {path.name}, about {job.estimated_rows:,} rows{' (dry run)' if dry_run else ''}."
            )
            self._shown = 0
            try:
                job = run_subscriber_import(job.pk, after_chunk=self._progress)
            except KeyboardInterrupt:
                cancel_subscriber_import(job, by=None)
                raise CommandError(f"{job} cancelled: what it imported so far stays.") from None
            return self._report(job, path)

    def _configure(self, job, mode, create_labels, replace_labels, channel):
        data = {
            "delimiter": job.delimiter,
            "mode": MODES[mode],
            "replace_labels": "1" if replace_labels else "0",
            "create_labels": "1" if create_labels else "0",
            "channel": "",
        }
        if channel:
            found = Channel.objects.filter(name=channel).first()
            if found is None:
                names = ", ".join(Channel.objects.order_by("name").values_list("name", flat=True))
                raise CommandError(f"--channel: there is no channel named {channel} (channels: {names}).")
            data["channel"] = str(found.pk)
        data.update({f"column_{index}": field for index, field in enumerate(job.mapping)})
        form = ImportSettingsForm(data, instance=job, may_create_labels=True)
        if not form.is_valid():
            problems = " ".join(message for messages in form.errors.values() for message in messages)
            raise CommandError(f"{problems} Columns: {', '.join(job.header)}. Nothing was imported.")
        form.save()

    def _progress(self, job_id):
        job = SubscriberImport.objects.get(pk=job_id)
        if job.stage == SubscriberImport.Stage.READING:
            done, text = job.rows_read, f"  checked {job.rows_read:,} of about {job.estimated_rows:,} rows"
        else:
            done, text = job.rows_read + job.rows_merged, f"  imported {job.rows_merged:,} of {job.staged_count:,} rows"
        if done - self._shown >= PROGRESS_EVERY or job.is_finished:
            self._shown = done
            self.stdout.write(text)

    def _report(self, job, path):
        if job.status == SubscriberImport.Status.FAILED:
            raise CommandError(f"{job} failed: {job.error}")
        self.stdout.write(self.style.SUCCESS(job.summary()))
        if job.rejected_count:
            rejects = path.with_name(f"{path.stem}.rejected.csv")
            imports.write_rejected_rows(job, rejects)
            raise CommandError(f"{job.rejected_count:,} rows rejected: see {rejects}.", returncode=REJECTED)
