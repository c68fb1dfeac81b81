from django.contrib.auth.management import create_permissions
from django.db import migrations

# Segments are shared by the team: every role sees and uses them (a segment shows only subscribers, which each
# role already sees). Saving, renaming, updating and deleting them is management, as labels are: Label managers.
GROUP_PERMISSIONS = {
    "Operators": [("segments", "view_segment")],
    "Broadcasters": [("segments", "view_segment")],
    "Label managers": [("segments", "view_segment"), ("segments", "manage_segment")],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    fill_groups(apps)


def fill_groups(apps):
    """Give the groups their segment permissions (which must exist); safe to run again."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for app_label, codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_permissions(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for permission in Permission.objects.filter(content_type__app_label="segments"):
        permission.group_set.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0001_initial"),
        ("subscribers", "0002_standard_channels_and_groups"),
        ("broadcasts", "0002_broadcasters_group"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_permissions)]
