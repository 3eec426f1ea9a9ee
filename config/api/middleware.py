"""Requests whose body has no declared length are refused with ``411 Length Required``.

A request with ``Transfer-Encoding`` (chunked, as HTTP/1.1 clients send a body whose size they do
not know in advance) has no ``Content-Length``. Django reads a request body only as far as
``Content-Length`` says, so such a body read as empty, and the API answered a misleading
"This field is required." Two ways out were weighed: reading the body to its end, which gunicorn
allows (it de-chunks and sets ``wsgi.input_terminated``), or refusing it clearly. It is refused:

- Every bound on a body in the project (the JSON parser's per-view limit, the GraphQL view's,
  Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``) is checked against ``Content-Length`` before the body
  is read; reading bodies of unknown length would mean teaching each of them to count instead.
- The development server cannot read them at all, so development and production would differ.
- The documented deployment puts nginx in front (README, "Running in production"), which
  buffers a chunked body and passes it on with a ``Content-Length``: storefronts behind it never
  meet this answer.
- RFC 9110 §15.5.12 defines ``411 Length Required`` for exactly this refusal (S3 answers the
  same), and it tells a client what to change, where an empty body told it something false.

Under ``/api/`` the answer is the contract's shape, ``{"errors": {"body": "..."}}`` (a body-level
error, as for malformed JSON or an oversized body); elsewhere plain text.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from config.api.exceptions import API_PATH_PREFIX, api_error_response

LENGTH_REQUIRED_MESSAGE = (
    "Send the body with a Content-Length header: "
    "bodies of unknown length (Transfer-Encoding) are not accepted."
)


def body_length_required_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Answers ``411`` to a request with ``Transfer-Encoding`` and no ``Content-Length``.

    Last in ``MIDDLEWARE``: no middleware reads a body, and what does (CSRF's ``process_view``,
    the views) runs after it. A request with a ``Content-Length``,
    or with neither header (no body), goes on unchanged. Why refuse rather than read: the
    module's docstring.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.META.get("HTTP_TRANSFER_ENCODING") and not request.META.get("CONTENT_LENGTH"):
            if request.path.startswith(API_PATH_PREFIX):
                return api_error_response(
                    key="body", message=LENGTH_REQUIRED_MESSAGE, status_code=411
                )
            return HttpResponse(LENGTH_REQUIRED_MESSAGE, status=411, content_type="text/plain")
        return get_response(request)

    return middleware
