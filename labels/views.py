from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from labels.models import Label


@permission_required("labels.view_label", raise_exception=True)
def label_list(request):
    labels = Label.objects.with_subscriber_counts().order_by("title", "pk")
    return render(request, "labels/list.html", {"labels": labels})
