"""`/contract`: the published event contract as a readable page, rendered on the server from
asyncapi.yaml and the schema files beside it (no script, nothing fetched from elsewhere), and
the files themselves (`/contract/asyncapi.yaml`, `/contract/schemas/<file>`).

The contract holds no incident data: like the OpenAPI document, it needs no token.
"""

from __future__ import annotations

import json
from functools import lru_cache
from html import escape
from pathlib import Path

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from markdown_it import MarkdownIt

router = APIRouter(tags=["contract"])

_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem 2rem;color:#1b1f24}
h1{font-size:1.6rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-top:1.6rem}table{border-collapse:collapse;margin:.5rem 0;width:100%}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}
code{background:#f6f8fa;padding:0 .2rem;border-radius:3px}.tag{background:#ddf4ff;border-radius:1rem;padding:0 .5rem;
margin-right:.3rem;font-size:.85em}nav a{margin-right:1rem}section.message{border-left:4px solid #0969da;padding-left:1rem}
"""


def _md(text: str | None) -> str:
    return _MD.render(text or "")


def _code(text: object) -> str:
    return f"<code>{escape(str(text))}</code>"


class _Schema:
    """One schema file, with its local `$ref`s followed."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema and schema["$ref"].startswith("#/"):
            target = self.doc
            for part in schema["$ref"][2:].split("/"):
                target = target[part]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def describe_type(self, schema: dict) -> tuple[str, bool]:
        """A short type text and whether null is allowed."""
        schema = self.resolve(schema)
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if alternatives:
            texts = [self.describe_type(a)[0] for a in alternatives if a.get("type") != "null"]
            return " | ".join(texts), any(a.get("type") == "null" for a in alternatives)
        if "const" in schema:
            return f"const {json.dumps(schema['const'])}", False
        kind = schema.get("type", "any")
        if "enum" in schema:
            return "one of " + ", ".join(json.dumps(v) for v in schema["enum"]), False
        if kind == "array":
            return f"array of {self.describe_type(schema.get('items', {}))[0]}", False
        if kind == "object" and "properties" in schema:
            return f"object {escape(schema.get('title', ''))}".strip(), False
        extra = [f"{k} {schema[k]}" for k in ("format", "pattern", "minimum", "maximum", "minLength", "maxLength") if k in schema]
        return kind + (f" ({'; '.join(str(e) for e in extra)})" if extra else ""), False

    def rows(self, schema: dict, prefix: str = "", depth: int = 0) -> list[str]:
        schema = self.resolve(schema)
        out = []
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            field = f"{prefix}{name}"
            text, nullable = self.describe_type(prop)
            resolved = self.resolve(prop)
            description = resolved.get("description") or self.resolve(prop).get("title", "")
            out.append(
                f"<tr><td>{_code(field)}</td><td>{escape(text)}</td><td>{'yes' if name in required else 'no'}</td>"
                f"<td>{'yes' if nullable else 'no'}</td><td>{escape(description)}</td></tr>"
            )
            nested = [self.resolve(a) for a in (resolved.get("anyOf") or [resolved]) if a.get("type") != "null"]
            for inner in nested:
                if inner.get("type") == "array":
                    inner = self.resolve(inner.get("items", {}))
                    field += "[]"
                if "properties" in inner and depth < 3:
                    out.extend(self.rows(inner, f"{field}.", depth + 1))
        return out


def render_page(spec: dict, schemas_dir: Path) -> str:
    info = spec["info"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(info['title'])} {escape(str(info['version']))}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(info['title'])} <small>release {escape(str(info['version']))}</small></h1>",
        "<nav><a href='#servers'>Servers</a><a href='#channels'>Channels</a><a href='#operations'>Operations</a>"
        "<a href='#messages'>Messages</a><a href='/contract/asyncapi.yaml'>asyncapi.yaml</a></nav>",
        f"<p>AsyncAPI {escape(spec['asyncapi'])}. Schemas: <a href='/contract/schemas/index.json'>index.json</a>.</p>",
        _md(info.get("description")),
        "<h2 id='servers'>Servers</h2><table><tr><th>server</th><th>host</th><th>protocol</th><th>security</th>"
        "<th>description</th></tr>",
    ]
    schemes = spec.get("components", {}).get("securitySchemes", {})
    for name, server in spec.get("servers", {}).items():
        security = ", ".join(
            f"{schemes[s['$ref'].rsplit('/', 1)[1]]['type']}" for s in server.get("security", []) if "$ref" in s
        ) or "none"
        parts.append(f"<tr><td>{escape(name)}</td><td>{_code(server['host'])}</td><td>{escape(server['protocol'])}</td>"
                     f"<td>{escape(security)}</td><td>{escape(server.get('description', ''))}</td></tr>")
    parts.append("</table><h2 id='channels'>Channels</h2><table><tr><th>topic</th><th>mode</th><th>agency</th>"
                 "<th>key</th><th>partitions</th><th>cleanup / retention (ms)</th><th>messages</th><th>description</th></tr>")
    for channel_id, channel in spec.get("channels", {}).items():
        kafka = channel["bindings"]["kafka"]
        config = kafka.get("topicConfiguration", {})
        messages = ", ".join(f"<a href='#{escape(m)}'>{escape(m)}</a>" for m in channel.get("messages", {}))
        parts.append(
            f"<tr id='channel-{escape(channel_id)}'><td>{_code(channel['address'])}</td>"
            f"<td>{escape(channel.get('x-muster-mode', ''))}</td><td>{escape(channel.get('x-muster-agency', 'every'))}</td>"
            f"<td>{_code(channel.get('x-muster-key', ''))}</td><td>{kafka.get('partitions', '')}</td>"
            f"<td>{escape(','.join(config.get('cleanup.policy', [])))} / {config.get('retention.ms', '')}</td>"
            f"<td>{messages}</td><td>{escape(channel.get('description', ''))}</td></tr>"
        )
    parts.append("</table><h2 id='operations'>Operations, by role</h2><table><tr><th>role</th><th>action</th>"
                 "<th>topic</th><th>messages</th></tr>")
    channels = spec.get("channels", {})
    for op in sorted(spec.get("operations", {}).values(), key=lambda o: (o.get("x-muster-role", ""), o["action"])):
        channel = channels[op["channel"]["$ref"].rsplit("/", 1)[1]]
        messages = ", ".join(escape(m["$ref"].rsplit("/", 1)[1]) for m in op.get("messages", []))
        parts.append(f"<tr><td>{escape(op.get('x-muster-role', ''))}</td><td>{escape(op['action'])}</td>"
                     f"<td>{_code(channel['address'])}</td><td>{messages}</td></tr>")
    parts.append("</table><h2 id='messages'>Messages</h2>")
    for message_id, message in spec.get("components", {}).get("messages", {}).items():
        payload_file = message["payload"]["$ref"].removeprefix("./schemas/")
        key_file = message["bindings"]["kafka"]["key"]["$ref"].removeprefix("./schemas/")
        payload = _Schema(json.loads((schemas_dir / payload_file).read_text()))
        key = json.loads((schemas_dir / key_file).read_text())
        headers = "".join(
            f"<tr><td>{_code(name)}</td><td>{escape(_Schema(message['headers']).describe_type(h)[0])}</td>"
            f"<td>{'yes' if name in message['headers'].get('required', []) else 'no'}</td></tr>"
            for name, h in message["headers"]["properties"].items()
        )
        parts.append(
            f"<section class='message' id='{escape(message_id)}'><h3>{escape(message['title'])}</h3>"
            f"<p>{escape(message.get('summary', ''))}</p>{_md(message.get('description'))}"
            f"<p>Payload schema: <a href='/contract/schemas/{escape(payload_file)}'>{escape(payload_file)}</a>. "
            f"Key: <a href='/contract/schemas/{escape(key_file)}'>{escape(key_file)}</a> ({escape(key.get('description', ''))}). "
            f"Correlation id: {_code(message['correlationId']['location'])}.</p>"
            f"<h4>Headers</h4><table><tr><th>header</th><th>value</th><th>always present</th></tr>{headers}</table>"
            "<h4>Payload</h4><table><tr><th>field</th><th>type</th><th>required</th><th>nullable</th><th>meaning</th></tr>"
            + "".join(payload.rows(payload.doc)) + "</table></section>"
        )
    parts.append("</body></html>")
    return "".join(parts)


@lru_cache(maxsize=4)
def _page(contract_file: Path, stamp: float) -> str:
    return render_page(yaml.safe_load(contract_file.read_text()), contract_file.parent / "schemas")


def _contract_file(request: Request) -> Path:
    path = Path(request.app.state.settings.contract_file)
    if not path.is_file():
        raise HTTPException(404, f"no contract at {path.name}")
    return path


@router.get("/contract", response_class=HTMLResponse, include_in_schema=False)
async def contract_page(request: Request) -> HTMLResponse:
    path = _contract_file(request)
    return HTMLResponse(_page(path, path.stat().st_mtime))


@router.get("/contract/asyncapi.yaml", include_in_schema=False)
async def contract_document(request: Request) -> FileResponse:
    return FileResponse(_contract_file(request), media_type="application/yaml")


@router.get("/contract/schemas/{name}", include_in_schema=False)
async def contract_schema(name: str, request: Request) -> FileResponse:
    directory = _contract_file(request).parent / "schemas"
    files = {p.name: p for p in directory.glob("*.json")}
    if name not in files:
        raise HTTPException(404, "no such schema")
    return FileResponse(files[name], media_type="application/schema+json")
