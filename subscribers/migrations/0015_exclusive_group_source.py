"""A label taken away because another label of its exclusive group was given (labels.LabelGroup): choices only."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("subscribers", "0014_label_operation_member_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="labelchange",
            name="source",
            field=models.CharField(
                choices=[
                    ("app", "Manage labels dialog"),
                    ("bulk", "Bulk action"),
                    ("admin", "Administration"),
                    ("api", "API"),
                    ("import", "Import"),
                    ("command", "Command line"),
                    ("undo", "Undo"),
                    ("label_deleted", "Label deleted"),
                    ("exclusive_group", "Another label of its exclusive group given"),
                ],
                max_length=20,
                verbose_name="source",
            ),
        ),
        migrations.AlterField(
            model_name="labeloperation",
            name="source",
            field=models.CharField(
                choices=[
                    ("app", "Manage labels dialog"),
                    ("bulk", "Bulk action"),
                    ("admin", "Administration"),
                    ("api", "API"),
                    ("import", "Import"),
                    ("command", "Command line"),
                    ("undo", "Undo"),
                    ("label_deleted", "Label deleted"),
                    ("exclusive_group", "Another label of its exclusive group given"),
                ],
                max_length=20,
                verbose_name="source",
            ),
        ),
    ]
