"""A CAP 1.2 message as a person reads it: its header, each info block, its parameters and
areas, in order, as (label, value) pairs. Pure; parses with lxml and never resolves entities
or fetches anything. Elements it does not know are shown under their own names, so a new
field in a message (an Update's references, an AllClear's expiry) is never hidden."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

NS = "urn:oasis:names:tc:emergency:cap:1.2"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

LABELS = {
    "identifier": "Identifier", "sender": "Sender", "sent": "Sent", "status": "Status", "msgType": "Message type",
    "source": "Source", "scope": "Scope", "restriction": "Restriction", "note": "Note", "references": "References",
    "incidents": "Incidents", "language": "Language", "category": "Category", "event": "Event",
    "responseType": "Response", "urgency": "Urgency", "severity": "Severity", "certainty": "Certainty",
    "senderName": "Sender name", "headline": "Headline", "description": "Description", "instruction": "Instruction",
    "contact": "Contact", "effective": "Effective", "onset": "Onset", "expires": "Expires", "web": "Web",
    "areaDesc": "Area", "circle": "Circle", "polygon": "Polygon", "addresses": "Addresses", "code": "Code",
}


@dataclass
class Block:
    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)


class Unreadable(ValueError):
    pass


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _pair(el) -> tuple[str, str]:
    name = el.findtext(f"{{{NS}}}valueName") or ""
    return name, el.findtext(f"{{{NS}}}value") or ""


def read(xml: str) -> list[Block]:
    """The message as blocks: the alert's header, then per info its fields, parameters and areas."""
    try:
        root = etree.fromstring(xml.encode(), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Unreadable(f"not well-formed XML: {exc}") from None
    if _local(root.tag) != "alert":
        raise Unreadable("not a CAP alert")
    header = Block("Message")
    blocks = [header]
    for child in root:
        tag = _local(child.tag)
        if tag == "info":
            info = Block("Information")
            blocks.append(info)
            for el in child:
                t = _local(el.tag)
                if t == "parameter":
                    info.fields.append(_pair(el))
                elif t == "eventCode":
                    info.fields.append(("Event code: " + _pair(el)[0], _pair(el)[1]))
                elif t == "area":
                    area = Block("Area")
                    blocks.append(area)
                    for a in el:
                        at = _local(a.tag)
                        if at == "geocode":
                            area.fields.append(("Geocode: " + _pair(a)[0], _pair(a)[1]))
                        elif at:
                            area.fields.append((LABELS.get(at, at), (a.text or "").strip()))
                elif t:
                    info.fields.append((LABELS.get(t, t), (el.text or "").strip()))
        elif tag:
            value = (child.text or "").strip()
            if tag == "references":
                value = "\n".join(value.split())
            header.fields.append((LABELS.get(tag, tag), value))
    return blocks
