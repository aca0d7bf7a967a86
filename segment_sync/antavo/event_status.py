"""The HTTP status one event of a bulk request stands for, so the inbound log's Status code is per event.

/events/bulk answers 200 for the request and puts each event's own error in its result, as
`{"error": {"type", "code", "message"}}`. The `type` names Antavo's exception, which is the
status /events would have answered for that event alone; `code` is Antavo's internal number.
"""

from __future__ import annotations

from typing import Any

_EXCEPTION_STATUS = {
    "BadRequestException": 400,
    "UnauthorizedException": 401,
    "ForbiddenException": 403,
    "NotFoundException": 404,
    "MethodNotAllowedException": 405,
    "ConflictException": 409,
    "UnprocessableEntityException": 422,
    "TooManyRequestsException": 429,
    "InternalServerErrorException": 500,
    "ServiceUnavailableException": 503,
}


def event_status_code(request_status: int | None, ok: bool, result: Any) -> int | None:
    """The event's own status: the request's unless a 2xx bulk answer failed this event alone.

    An event error of an unknown exception type has no status (None), rather than a guessed one.
    """
    if ok or request_status is None or not 200 <= request_status < 300:
        return request_status
    error = result.get("error") if isinstance(result, dict) else None
    if not isinstance(error, dict):
        return None
    return _EXCEPTION_STATUS.get(str(error.get("type")))
