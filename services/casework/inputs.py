"""The incident facts casework reads, turned into per-case inputs.

`inputs_of(event)` says which cases a fact concerns (a report about a property by a resident
who has complained before concerns two) and what each should apply. An input is plain data
that packs into one small JSON list for the re-keyed topic (no free text, no people): the
casework processor moves only what it counts.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from services.shared import events as ev

ASB, PREMISES = "asb", "premises"
# ops
COMPLAINT, REPORT, SAFEGUARD, RESPONDED = "complaint", "report", "safeguard", "responded"
NOTICE, APPLIED, ORDER, EXTENDED, WARRANT = "notice", "applied", "order", "extended", "warrant"


@dataclass(frozen=True, slots=True)
class CaseInput:
    kind: str  # asb | premises
    subject: str  # complainant key | uprn
    mode: str
    op: str
    incident_id: str
    at: int  # when it happened (epoch s): the complaint made, the report's behaviour, the step taken
    recorded_at: int  # when intake accepted the fact: outputs are stamped with it (deterministic)
    category: str | None = None
    agency: str | None = None
    behaviour_at: int | None = None
    hate: bool = False
    vulnerable: bool = False
    housing_provider: str | None = None
    value: int | None = None  # duration hours, hearing_at, ends_at; the stage for `responded` (0 decision, 1 review)

    @property
    def key(self) -> str:
        return case_key(self.kind, self.subject, self.mode)

    def pack(self) -> list:
        return list(astuple(self))

    @classmethod
    def unpack(cls, row: list) -> "CaseInput":
        if not isinstance(row, list) or len(row) != len(cls.__slots__):
            raise ValueError("case input: not a list of the expected length")
        item = cls(*row)
        if item.kind not in (ASB, PREMISES) or not isinstance(item.at, int) or not isinstance(item.recorded_at, int):
            raise ValueError(f"case input: bad kind {item.kind!r} or times")
        return item


def case_key(kind: str, subject: str, mode: str) -> str:
    return f"{mode}|{kind}|{subject}"


def _s(at) -> int:
    return int(at.timestamp())


def inputs_of(event: ev.Event, *, premises_categories, safeguarding_categories, asb_categories) -> list[CaseInput]:
    """The case inputs one incident fact makes (none for a fact casework does not read)."""
    mode = event.mode.value
    base = {"mode": mode, "incident_id": str(getattr(event, "incident_id", "")), "recorded_at": _s(event.recorded_at)}
    out: list[CaseInput] = []
    if isinstance(event, ev.IncidentReported):
        agency = event.source.agency.value if event.source.agency else None
        category = event.category.value
        if event.category in safeguarding_categories:
            for kind, subject in ((ASB, event.complainant_key), (PREMISES, event.uprn)):
                if subject:
                    out.append(CaseInput(kind, subject, op=SAFEGUARD, at=_s(event.occurred_at), category=category, **base))
            return out
        if event.complainant_key and event.category in asb_categories:
            out.append(CaseInput(
                ASB, event.complainant_key, op=COMPLAINT, at=_s(event.recorded_at), category=category, agency=agency,
                behaviour_at=_s(event.occurred_at), housing_provider=event.housing_provider, **base,
            ))
        if event.uprn and event.category in premises_categories:
            out.append(CaseInput(
                PREMISES, event.uprn, op=REPORT, at=_s(event.occurred_at), category=category, agency=agency,
                housing_provider=event.housing_provider, **base,
            ))
    elif isinstance(event, ev.ComplaintRecorded):
        category = event.category.value
        if event.category in asb_categories:
            out.append(CaseInput(
                ASB, event.complainant_key, op=COMPLAINT, at=_s(event.occurred_at), category=category,
                agency=event.agency.value, behaviour_at=_s(event.behaviour_at), hate=event.hate_motivated,
                vulnerable=event.vulnerable_victim, housing_provider=event.housing_provider, **base,
            ))
        if event.uprn and event.category in premises_categories:
            out.append(CaseInput(
                PREMISES, event.uprn, op=REPORT, at=_s(event.behaviour_at), category=category,
                agency=event.agency.value, housing_provider=event.housing_provider, **base,
            ))
    elif isinstance(event, ev.AsbCaseReviewResponded):
        out.append(CaseInput(ASB, event.complainant_key, op=RESPONDED, at=_s(event.occurred_at),
                             value=0 if event.stage == "decision" else 1, **base))
    elif isinstance(event, ev.CasePassedToSafeguarding):
        for kind, subject in ((ASB, event.complainant_key), (PREMISES, event.uprn)):
            if subject:
                out.append(CaseInput(kind, subject, op=SAFEGUARD, at=_s(event.occurred_at), agency=event.agency.value, **base))
    elif isinstance(event, ev.PremisesFact):
        step = {
            ev.ClosureNoticeIssued: (NOTICE, lambda e: e.duration_hours),
            ev.ClosureOrderApplied: (APPLIED, lambda e: _s(e.hearing_at)),
            ev.ClosureOrderMade: (ORDER, lambda e: _s(e.ends_at)),
            ev.ClosureOrderExtended: (EXTENDED, lambda e: _s(e.ends_at)),
            ev.WarrantExecuted: (WARRANT, lambda e: None),
        }.get(type(event))
        if step is not None:
            op, value = step
            out.append(CaseInput(PREMISES, event.uprn, op=op, at=_s(event.occurred_at), agency=event.agency.value,
                                 value=value(event), **base))
    return out
