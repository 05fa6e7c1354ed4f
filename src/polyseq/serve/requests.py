"""Request bodies as LibreTranslate's clients send them: JSON, or form fields (urlencoded or
multipart), read into one `Fields` with checks that answer 400 naming the field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from polyseq.serve.limits import Refused


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass(frozen=True)
class Fields:
    values: dict[str, Any]

    def text(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise Refused(400, f"Invalid request: {name} must be a string")
        _check_unicode(value, name)
        return value

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise Refused(400, f"Invalid request: missing {name} parameter")
        return value

    def integer(self, name: str, low: int, high: int, default: int = 0, raise_to_low: bool = False) -> int:
        """The field as an integer from low to high; with `raise_to_low`, one below low counts as low."""
        value = self.values.get(name, default)
        try:
            number = int(value)
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
        except (TypeError, ValueError):
            raise Refused(400, f"Invalid request: {name} must be an integer") from None
        if raise_to_low:
            number = max(number, low)
        if not low <= number <= high:
            raise Refused(400, f"Invalid request: {name} must be from {low} to {high}, not {number}")
        return number

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.values.get(name) or {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise Refused(400, f"Invalid request: {name} must be a JSON object") from None
        if not isinstance(value, dict):
            raise Refused(400, f"Invalid request: {name} must be a JSON object")
        return dict(value)

    def texts(self, batch_limit: int, char_limit: int) -> tuple[list[str], bool]:
        """`q` as a list of texts, and whether it was a list; checked against the limits."""
        q = self.values.get("q")
        if q is None or q == "" or q == []:
            raise Refused(400, "Invalid request: missing q parameter")
        batch = isinstance(q, list)
        texts = q if batch else [q]
        if not all(isinstance(text, str) for text in texts):
            raise Refused(400, "Invalid request: q must be a string or a list of strings")
        for index, text in enumerate(texts):
            _check_unicode(text, f"q[{index}]" if batch else "q")
        if len(texts) > batch_limit:
            raise Refused(400, f"Invalid request: request ({len(texts)}) exceeds text limit ({batch_limit})")
        for index, text in enumerate(texts):  # each text on its own, as LibreTranslate counts
            if len(text) > char_limit:
                where = f"q[{index}]" if batch else "q"
                raise Refused(400, f"Invalid request: {where} ({len(text)} characters) exceeds the "
                              f"character limit ({char_limit})")
        return texts, batch

    def file(self, name: str, max_bytes: int) -> Upload:
        value = self.values.get(name)
        if not isinstance(value, Upload):
            raise Refused(400, f"Invalid request: missing {name} parameter")
        if not value.data:
            raise Refused(400, "Invalid request: empty file")
        if len(value.data) > max_bytes:
            raise Refused(400, f"Invalid request: the file has {len(value.data)} bytes, at most "
                          f"{max_bytes} are taken")
        return value


def _check_unicode(text: str, name: str) -> None:
    """A lone surrogate (JSON allows "\\ud800") is no text a model can read."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise Refused(400, f"Invalid request: {name} is not valid Unicode (character {error.start})"
                      ) from None


async def read_fields(request: Request, max_bytes: int) -> Fields:
    """The query string's fields with the body's over them (deep-translator sends every field in
    the query string; LibreTranslate reads both); 400 for a body that is too large, not JSON, or
    not a JSON object."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        body = _as_fields(await _form(request, max_bytes))
    else:
        body = await _json(request, max_bytes)
    query = _as_fields({key: request.query_params.getlist(key) for key in request.query_params})
    return Fields({**query, **body})


def _as_fields(multi: dict[str, list[Any]]) -> dict[str, Any]:
    """Form or query-string fields as LibreTranslate reads them: the first value of each (every
    value of a repeated q), text's line ends made "\n" as its `"\n".join(q.splitlines())` does."""
    values = {key: items if key == "q" and len(items) > 1 else items[0] for key, items in multi.items()}
    q = values.get("q")
    if isinstance(q, str):
        values["q"] = "\n".join(q.splitlines())
    elif isinstance(q, list):
        values["q"] = ["\n".join(text.splitlines()) if isinstance(text, str) else text for text in q]
    return values


async def _form(request: Request, max_bytes: int) -> dict[str, list[Any]]:
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise Refused(411, "A form body needs its Content-Length")
    if int(length) > max_bytes:
        raise Refused(400, f"Invalid request: the body has {length} bytes, at most {max_bytes} are taken")
    values: dict[str, list[Any]] = {}
    async with request.form(max_part_size=max_bytes) as form:
        for key in form:
            values[key] = [Upload(item.filename or "", await item.read()) if isinstance(item, UploadFile)
                           else item for item in form.getlist(key)]
    return values


async def _json(request: Request, max_bytes: int) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise Refused(400, f"Invalid request: the body has {length} bytes, at most {max_bytes} are taken")
    chunks, size = [], 0
    async for chunk in request.stream():  # counted as it comes: a chunked body has no length
        size += len(chunk)
        if size > max_bytes:
            raise Refused(400, f"Invalid request: the body has more than {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Refused(400, f"Invalid request: the body is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise Refused(400, "Invalid request: the body must be a JSON object")
    return data
