"""The members of bulk changes lose three indexes that duplicated the primary key and the by-subscriber one."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labels", "0004_grey_colour_name"),
        ("subscribers", "0013_search_name_backfill_and_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="labeloperationmember",
            name="label",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="labels.label",
            ),
        ),
        migrations.AlterField(
            model_name="labeloperationmember",
            name="operation",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="members",
                to="subscribers.labeloperation",
            ),
        ),
        migrations.AlterField(
            model_name="labeloperationmember",
            name="subscriber",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="subscribers.subscriber",
            ),
        ),
    ]
