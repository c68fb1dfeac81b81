"""Bring stored labels within the rules 0003 makes database constraints.

Titles are normalised (labels.names.normalise_title); a title that then equals another's, ignoring
case, gets " (2)", " (3)"… so both labels stay and can be told apart. Descriptions longer than the
limit are cut to it (the API never accepted more).
"""

from django.db import migrations

from labels.names import normalise_title

DESCRIPTION_MAX_LENGTH = 2000
TITLE_MAX_LENGTH = 100


def normalise(apps, schema_editor):
    Label = apps.get_model("labels", "Label")
    taken = {title.lower() for title in Label.objects.values_list("title", flat=True)}
    for label in Label.objects.order_by("pk").iterator():
        changed = []
        title = normalise_title(label.title) or label.name
        if title != label.title:
            candidate, counter = title, 2
            while candidate.lower() in taken:
                suffix = f" ({counter})"
                candidate, counter = title[: TITLE_MAX_LENGTH - len(suffix)] + suffix, counter + 1
            taken.add(candidate.lower())
            label.title = candidate
            changed.append("title")
        if len(label.description) > DESCRIPTION_MAX_LENGTH:
            label.description = label.description[:DESCRIPTION_MAX_LENGTH]
            changed.append("description")
        if changed:
            label.save(update_fields=changed)


class Migration(migrations.Migration):
    dependencies = [("labels", "0001_initial")]

    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]
