from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from subscribers.models import Subscriber


@permission_required("subscribers.view_subscriber", raise_exception=True)
def subscriber_list(request):
    subscribers = Subscriber.objects.select_related("channel").prefetch_related("labels")[:25]
    return render(request, "subscribers/list.html", {"subscribers": subscribers})
