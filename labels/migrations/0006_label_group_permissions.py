from django.contrib.auth.management import create_permissions
from django.db import migrations

# Label managers manage the groups as they manage the labels; everyone who may see labels sees their groups.
GROUP_PERMISSIONS = {
    "Operators": ["view_labelgroup"],
    "Label managers": ["view_labelgroup", "add_labelgroup", "change_labelgroup", "delete_labelgroup"],
}


def give_permissions(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    app_config = apps.get_app_config("labels")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    fill_groups(apps)


def fill_groups(apps):
    """Give the groups their label-group permissions (which must exist); safe to run again."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label="labels", codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("labels", "0005_label_groups"),
        ("subscribers", "0002_standard_channels_and_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(give_permissions, migrations.RunPython.noop)]
