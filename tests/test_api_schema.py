"""Schemathesis fuzzes every operation from our own OpenAPI schema: no 500s, and every response
(status, content type, body) matches what the schema promises. Kept to a few examples per
operation so the suite stays fast."""

import json

import pytest
import schemathesis
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.models import ApiKey
from api.views import api
from segments.models import Segment

# Through JSON, as /api/v1/openapi.json serves it: the descriptions are lazy, in the reader's language.
schema = schemathesis.openapi.from_dict(
    json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api/v1"), cls=DjangoJSONEncoder))
)
schema.app = get_wsgi_application()

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    # Like Django's test Client: a request must not close the connection holding the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_key(api_key, make_subscriber, make_label):
    ApiKey.objects.update(rate_limit_per_minute=100_000)
    make_subscriber(foreign_id="0")
    make_label("VIP", name="vip")
    Segment.objects.create(name="VIP people", query="label=vip")
    return api_key.full_key


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_its_schema_says(case, fuzz_key):
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_key}"}, checks=CHECKS)
