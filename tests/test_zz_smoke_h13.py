import io
import pytest
from subscribers import actions, imports
from subscribers.models import Subscriber, SubscriberImport, SubscriberLabel, LabelOperation

pytestmark = pytest.mark.django_db

@pytest.fixture(autouse=True)
def _dir(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"

def run(text, **options):
    stored = imports.store_file(io.BytesIO(text.encode()), "x.csv")
    job = imports.record_upload(stored)
    for k, v in options.items(): setattr(job, k, v)
    job.save()
    actions.start_subscriber_import(job, dry_run=options.pop("dry", False), background=False)
    return actions.run_subscriber_import(job.pk)

def test_smoke(make_label):
    make_label("VIP", name="vip")
    job = run("channel,foreign_id,first_name,labels\nmessenger,1,Ada,vip|new one\nweb,2,Bob,\nnope,3,X,\nmessenger,1,Ada2,vip\n", create_labels=True)
    print(job.status, job.error, job.summary(), job.new_labels, list(job.problems.values_list("row","kind","reason")))
    print(list(Subscriber.objects.values_list("foreign_id","first_name")), list(SubscriberLabel.objects.values_list("subscriber__foreign_id","label__name")))
    job2 = run("channel,foreign_id,first_name,labels\nmessenger,1,Ada,vip|new one\nweb,2,Bob,\nnope,3,X,\nmessenger,1,Ada2,vip\n", create_labels=True)
    print(job2.status, job2.error, job2.summary())
    job3 = run("channel,foreign_id,first_name,labels\nmessenger,1,Ada,vip\nweb,2,Bob,\n", replace_labels=True, dry_run=True)
    print(job3.status, job3.error, job3.summary(), job3.labels_removed)
    print(list(LabelOperation.objects.values_list("kind","source","status","changed_count","label_names")))
    print(list(imports.rejected_rows(job)))
