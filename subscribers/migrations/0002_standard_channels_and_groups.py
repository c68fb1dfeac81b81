from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.utils.translation import gettext_noop

# Titles are stored in English and shown in the operator's language (Channel.__str__): marked for the catalogs.
STANDARD_CHANNELS = [
    ("messenger", gettext_noop("Facebook Messenger"), "messenger"),
    ("web", gettext_noop("Web site"), "webhook"),
    ("console", gettext_noop("Live chat tester"), "console"),
]

GROUP_PERMISSIONS = {
    "Operators": [
        ("subscribers", "view_subscriber"),
        ("subscribers", "view_channel"),
        ("subscribers", "change_subscriber_labels"),
        ("labels", "view_label"),
    ],
    "Label managers": [
        ("labels", "view_label"),
        ("labels", "add_label"),
        ("labels", "change_label"),
        ("labels", "delete_label"),
    ],
}


def create_channels(apps, schema_editor):
    Channel = apps.get_model("subscribers", "Channel")
    for name, title, kind in STANDARD_CHANNELS:
        Channel.objects.get_or_create(name=name, defaults={"title": title, "kind": kind})


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    fill_groups(apps)


def fill_groups(apps):
    """Create the groups with their permissions (which must exist); safe to run again."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for app_label, codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("subscribers", "0001_initial"),
        ("labels", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_channels, migrations.RunPython.noop),
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
