"""Plain ASGI middleware: the request body limit (request metrics: services.shared.http)."""

from __future__ import annotations

import orjson

from services.intake.metrics import IntakeMetrics


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def too_large_body(limit: int) -> bytes:
    return orjson.dumps({"error": "too_large", "detail": f"request body larger than {limit} bytes", "errors": []})


class BodyLimit:
    """Refuses a request body over the limit: at once (413) when its Content-Length says so,
    else (chunked) as soon as more than the limit has arrived (BodyTooLarge, answered 413)."""

    def __init__(self, app, metrics: IntakeMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await self._reject_too_large(send)
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive):
        seen = 0
        limit = self.max_body_bytes

        async def receive_limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_limited

    async def _reject_too_large(self, send) -> None:
        self.metrics.rejections.labels("too_large").inc()
        body = too_large_body(self.max_body_bytes)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
