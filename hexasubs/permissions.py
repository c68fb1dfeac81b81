"""The users' permissions, kept in the shared cache between requests.

Django's ModelBackend reads a user's permissions with two queries on every request that checks one (the
user's own, their groups'). `CachedModelBackend` keeps the set in the cache under the user's id, tagged with
a version that changes whenever any user's groups, any user's own permissions or any group's permissions
change (Django's `m2m_changed`, which the admin and every `.add()`, `.remove()`, `.set()` send), or a user,
group or permission is deleted: the next request reads the new rights. `PERMISSIONS_TIMEOUT` bounds how long a
change made around Django's relations (raw SQL, a data migration's historical models) goes unseen.

Whether the user is active or a superuser comes from the user's row, read on every request as before.
"""

from uuid import uuid4

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete
from django.dispatch import receiver

VERSION_KEY = "auth:permissions:version"
PERMISSIONS_TIMEOUT = 60
# The relations whose changes change someone's rights: a user's groups and permissions, a group's permissions.
# (A data migration's historical models are other classes: their changes wait out PERMISSIONS_TIMEOUT.)
RELATIONS = (User.groups.through, User.user_permissions.through, Group.permissions.through)


class CachedModelBackend(ModelBackend):
    """ModelBackend whose permission sets come from the cache while no group or permission has changed."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = self._cached_permissions(user_obj)
        return user_obj._perm_cache

    def _cached_permissions(self, user) -> set[str]:
        key = f"auth:permissions:{user.pk}"
        found = cache.get_many([VERSION_KEY, key])
        version, stored = found.get(VERSION_KEY), found.get(key)
        if version is not None and stored is not None and stored[:2] == (version, user.is_superuser):
            return set(stored[2])
        if version is None:
            cache.add(VERSION_KEY, uuid4().hex, timeout=None)
            version = cache.get(VERSION_KEY)
        permissions = self.get_user_permissions(user) | self.get_group_permissions(user)
        cache.set(key, (version, user.is_superuser, frozenset(permissions)), PERMISSIONS_TIMEOUT)
        return permissions


def forget_permissions() -> None:
    """Every cached permission set is out of date: now, and again once the transaction commits.

    Now, so that the rest of this transaction (and a test inside one) sees the change; again on commit,
    because another request may have cached the old rights between the two.
    """
    cache.set(VERSION_KEY, uuid4().hex, timeout=None)
    transaction.on_commit(lambda: cache.set(VERSION_KEY, uuid4().hex, timeout=None))


@receiver(m2m_changed, dispatch_uid="hexasubs.permissions.relations")
def _relation_changed(sender, action, **kwargs):
    if action in ("post_add", "post_remove", "post_clear") and sender in RELATIONS:
        forget_permissions()


# A deleted user too: SQLite may give the next user the same id, who must not find the old rights.
@receiver(post_delete, sender=User, dispatch_uid="hexasubs.permissions.user")
@receiver(post_delete, sender=Group, dispatch_uid="hexasubs.permissions.group")
@receiver(post_delete, sender=Permission, dispatch_uid="hexasubs.permissions.permission")
def _deleted(sender, **kwargs):
    forget_permissions()
