from django.contrib.auth.management import create_permissions
from django.db import migrations

# Broadcasters compose, send, schedule, pause, resume and cancel broadcasts; Operators see them and their
# reports, and opt subscribers out of promotional messages (or back in) on a subscriber's page.
GROUP_PERMISSIONS = {
    "Broadcasters": [
        ("broadcasts", "view_broadcast"),
        ("broadcasts", "add_broadcast"),
        ("broadcasts", "change_broadcast"),
        ("broadcasts", "delete_broadcast"),
        ("broadcasts", "send_broadcast"),
        ("broadcasts", "view_consolemessage"),
        ("subscribers", "view_subscriber"),
        ("subscribers", "view_channel"),
        ("labels", "view_label"),
    ],
    "Operators": [
        ("broadcasts", "view_broadcast"),
        ("broadcasts", "view_consolemessage"),
        ("subscribers", "change_subscriber_opt_out"),
    ],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    fill_groups(apps)


def fill_groups(apps):
    """Create or complete the groups with their permissions (which must exist); safe to run again."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for app_label, codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Broadcasters").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("broadcasts", "0001_initial"),
        ("subscribers", "0010_subscriber_opt_out"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
