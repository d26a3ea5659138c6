"""What the casework processor remembers about one case, as plain data that round-trips
through JSON (the value of its changelog-backed table).

A case is one complainant (kind `asb`) or one property (kind `premises`) in one mode. It
holds each incident once (the same complaint to three agencies is one entry, with every
agency that took it), the safeguarding flag, the open ASB Case Review episode with its
clocks, the premises rules that have fired, and the closure-power clocks. Times are epoch
seconds. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import orjson

ASB, PREMISES = "asb", "premises"


@dataclass(slots=True)
class Entry:
    incident_id: str
    at: int  # complaint made (asb) or behaviour reported (premises), epoch s
    category: str
    agencies: list[str] = field(default_factory=list)
    behaviour_at: int | None = None  # asb: when the behaviour happened
    hate: bool = False
    vulnerable: bool = False


@dataclass(slots=True)
class Clock:
    name: str
    started_at: int
    due_at: int
    met_at: int | None = None
    working_days: int | None = None


@dataclass(slots=True)
class Episode:
    """One ASB Case Review threshold met, until its review is held."""

    met_at: int
    met_by: str
    threshold: int
    basis: str
    counted: list[str]
    clocks: list[Clock]
    route: str


@dataclass(slots=True)
class CaseState:
    kind: str
    subject: str  # the complainant key, or the UPRN
    mode: str = "live"
    version: int = 0  # facts applied: the snapshot's deterministic id counts them
    position: list[int] | None = None  # [by-case offset, index in its record] of the last input applied
    entries: dict[str, Entry] = field(default_factory=dict)
    safeguarding_by: str | None = None  # the incident that routed the case to safeguarding
    housing_providers: list[str] = field(default_factory=list)
    episode: Episode | None = None
    closed_before: int | None = None  # asb: complaints made before this belong to a review already held
    fired: dict[str, int] = field(default_factory=dict)  # premises rule id -> the report time it fired at (still holding)
    episodes: dict[str, int] = field(default_factory=dict)  # premises rule id -> times it has fired
    rearmed: dict[str, int] = field(default_factory=dict)  # premises rule id -> fires again only for windows ending after
    enforcement_alerted: bool = False  # an alert routed to enforcement went out
    clocks: dict[str, Clock] = field(default_factory=dict)  # premises: notice_expires, court_deadline, order_expires
    order_made_at: int | None = None
    warned: list[str] = field(default_factory=list)  # warnings already sent: "clock@due[!]"
    last_at: int = 0  # newest fact time applied
    let_go: int = 0  # entries no longer kept (past the horizon, or beyond processing.max_entries)

    @property
    def route(self) -> str:
        return "safeguarding" if self.safeguarding_by else "enforcement"

    def replayed(self, offset: int, index: int) -> bool:
        """An input at or before the last one applied: a redelivery after a restart."""
        return self.position is not None and (offset, index) <= tuple(self.position)

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_NON_STR_KEYS)

    @classmethod
    def loads(cls, raw: bytes | str) -> "CaseState":
        data = orjson.loads(raw)
        data["entries"] = {k: Entry(**v) for k, v in data["entries"].items()}
        data["clocks"] = {k: Clock(**v) for k, v in data["clocks"].items()}
        if data["episode"] is not None:
            ep = data["episode"]
            ep["clocks"] = [Clock(**c) for c in ep["clocks"]]
            data["episode"] = Episode(**ep)
        return cls(**data)
