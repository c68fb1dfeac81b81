"""The default cache when no Redis is configured: Django's database cache, shared by every process."""

import base64
import pickle

from django.core.cache.backends import db
from django.db import connections, router


class DatabaseCache(db.DatabaseCache):
    """Django's database cache whose incr() is atomic, so the API's rate-limit counters hold across processes.

    Django's own incr() reads, adds and writes back: two workers counting at once both write the same
    number and one request goes uncounted. Here the write only succeeds if the stored value is still
    the one read (compare and swap), and is retried otherwise. The expiry is left as `add()` set it.
    """

    ATTEMPTS = 50

    def incr(self, key, delta=1, version=None):
        for _attempt in range(self.ATTEMPTS):
            value = self.get(key, self._missing_key, version=version)
            if value is self._missing_key:
                raise ValueError(f"Key '{key}' not found")
            if self._swap(key, value, value + delta, version):
                return value + delta
        raise RuntimeError(f"The cache key '{key}' kept changing; gave up after {self.ATTEMPTS} attempts.")

    def _swap(self, key, old, new, version) -> bool:
        key = self.make_and_validate_key(key, version=version)
        connection = connections[router.db_for_write(self.cache_model_class)]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(self._table)} SET {quote('value')} = %s "
                f"WHERE {quote('cache_key')} = %s AND {quote('value')} = %s",
                [self._encode(new), key, self._encode(old)],
            )
            return cursor.rowcount == 1

    def _encode(self, value) -> str:
        # As DatabaseCache stores values; pickling a number always gives the same bytes.
        return base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
