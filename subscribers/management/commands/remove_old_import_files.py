"""Delete the uploaded files of old imports now (the workers' sweep does it too, every few seconds)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from subscribers.actions import OLD_IMPORTS_PER_SWEEP, remove_old_import_files


class Command(BaseCommand):
    help = (
        "Delete the uploaded files (and staged rows) of imports never started, or ended, more than "
        "IMPORT_KEEP_HOURS ago (default 24), and files in IMPORT_DIR that no import names. Ended imports keep "
        "their report; imports never started are deleted."
    )

    def handle(self, *args, **options):
        total = {"drafts": 0, "files": 0, "strays": 0}
        while True:
            removed = remove_old_import_files()
            for key, count in removed.items():
                total[key] += count
            if removed["drafts"] + removed["files"] < OLD_IMPORTS_PER_SWEEP:
                break
        self.stdout.write(
            f"Removed {total['drafts']} import(s) never started, the files of {total['files']} ended import(s) "
            f"and {total['strays']} file(s) no import named (older than {settings.IMPORT_KEEP_HOURS:g} hours)."
        )
