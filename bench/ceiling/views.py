import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Hit


@csrf_exempt  # like the Checkout API (DRF's APIView is csrf-exempt without session auth)
@require_POST
def ceiling(request: HttpRequest) -> JsonResponse:
    """Parse the JSON body, insert one row (autocommit), answer like the endpoint does."""
    try:
        data = json.loads(request.body)
    except ValueError:
        return JsonResponse({"errors": {"body": "Malformed JSON."}}, status=400)
    email = data.get("email") if isinstance(data, dict) else None
    Hit.objects.create(email=str(email or "")[:254])
    return JsonResponse({"subscribed": True}, status=201)
