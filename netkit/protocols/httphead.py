"""The head of an HTTP/1.x message: request or status line, then header lines.

Text protocols have no fixed layout: a field is a run of bytes up to a
space or CRLF.  Each field keeps its byte offset so a renderer can point at
it in the hexdump; values are decoded as UTF-8 with invalid bytes kept as
surrogates (``surrogateescape``), so :func:`netkit.protocols.text.escape`
shows each as ``\\xNN``: escaping for the terminal is the renderer's job.
"""

from __future__ import annotations

from netkit.protocols.frames import Field, Header, Malformed

# header name (lower case) -> tshark's field name
HEADER_FIELDS = {
    "host": "http.host",
    "user-agent": "http.user_agent",
    "accept": "http.accept",
    "connection": "http.connection",
    "content-type": "http.content_type",
    "content-length": "http.content_length_header",
    "server": "http.server",
}
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE")


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def looks_like_http(data: bytes) -> bool:
    return data.startswith(b"HTTP/1.") or any(data.startswith(m.encode() + b" ") for m in METHODS)


def parse_http(data: bytes) -> Header:
    """The request or status line and the headers of *data* (one TCP segment's payload)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise Malformed("HTTP head without its blank line in this segment")
    lines = data[:end].split(b"\r\n")
    first = lines[0]
    parts = first.split(b" ", 2)
    if len(parts) < 3:
        raise Malformed("HTTP start line without three parts")
    fields: list[Field] = []
    pos = 0
    if first.startswith(b"HTTP/"):
        kind = "response"
        names = ("http.response.version", "http.response.code", "http.response.phrase")
        labels = ("Version", "Status code", "Reason phrase")
    else:
        kind = "request"
        names = ("http.request.method", "http.request.uri", "http.request.version")
        labels = ("Method", "Request target", "Version")
    for name, label, part in zip(names, labels, parts, strict=True):
        value: int | str = decode(part)
        if name == "http.response.code":
            if not part.isdigit():
                raise Malformed("HTTP status code is not a number")
            value = int(part)
        fields.append(Field(name, label, value, pos, 8 * len(part)))
        pos += len(part) + 1
    pos = len(first) + 2
    for line in lines[1:]:
        key, sep, rest = line.partition(b":")
        if sep:
            value_start = pos + len(key) + 1 + (len(rest) - len(rest.lstrip(b" \t")))
            raw = rest.strip(b" \t")
            name = HEADER_FIELDS.get(key.decode("latin-1").lower(), "")
            fields.append(Field(name, f"{decode(key)}:", decode(raw), value_start, 8 * len(raw)))
        pos += len(line) + 2
    body = data[end + 4 :]
    if body:
        fields.append(Field("", "Body", decode(body), end + 4, 8 * len(body)))
    values: dict[str, int | str] = {f.name: f.value for f in fields if f.name}
    values.update(kind=kind, start_line=decode(first))
    return Header("http", end + 4, fields, values)
