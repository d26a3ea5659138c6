"""The casework decisions, as pure functions of a case, one input and the configuration.

`apply(state, item, config)` folds one input into a case and returns the new state and the
events to publish: a threshold met, a case routed to safeguarding, and the case's new
picture (`CaseworkCaseChanged`). `due(state, now, config)` is the clock: the warnings that
have fallen due by `now`. Every output's id and timestamps come from the inputs (or the
due time), so a replay of the same log publishes the same bytes.

Counting (docs/casework.md says it in words):
- ASB Case Review: a complaint qualifies when made within `qualify_within` of the behaviour;
  the same incident complained of to several agencies is one complaint (the earliest made);
  complaints count together when the latest is at most `window` after the earliest; the
  threshold is the lowest that applies to the complaints in that window (hate-motivated or
  a vulnerable victim lower it). Met once per episode; the episode ends when its review is
  held, and only complaints made after that count towards the next.
- Premises: reports of the ledger's categories about one UPRN, each incident once with every
  agency that reported it; a rule fires when a window holds enough reports from enough
  agencies, and fires again only after it has stopped holding.
- Safeguarding gate: any exploitation or safeguarding incident for the same property or
  complainant, or a case passed to safeguarding, routes the case to safeguarding for good.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from functools import lru_cache

from services.casework import calendar
from services.casework.config import CaseworkConfig
from services.casework.inputs import (
    APPLIED, ASB, COMPLAINT, EXTENDED, NOTICE, ORDER, PREMISES, REPORT, RESPONDED, SAFEGUARD, WARRANT, CaseInput,
)
from services.casework.state import CaseState, Clock, Entry, Episode
from services.shared import events as ev

SOURCE = ev.Source(kind=ev.SourceKind.SYSTEM, id="casework")
HOUR = 3600


class CaseworkRejected(ValueError):
    """An input the law does not allow (an order extended past six months in total)."""


def _dt(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def case_id(state: CaseState) -> uuid.UUID:
    return ev.case_id_of(state.kind, state.subject, state.mode)


# --- the fold ---------------------------------------------------------------------------------


def apply(state: CaseState | None, item: CaseInput, config: CaseworkConfig) -> tuple[CaseState, list[ev.Event]]:
    """One input folded into its case: the case and the alerts it raised. The case's picture
    (`snapshot`) is not among them: the caller takes one per case when a batch is done, because a
    picture costs the whole case and only the newest is kept."""
    state = state if state is not None else CaseState(kind=item.kind, subject=item.subject, mode=item.mode)
    out: list[ev.Event] = []
    was_routed = state.route
    if item.op in (COMPLAINT, REPORT):
        _add_entry(state, item)
    elif item.op == SAFEGUARD:
        if state.safeguarding_by is None:
            state.safeguarding_by = item.incident_id
    elif item.op == RESPONDED:
        _respond(state, item)
    elif item.op in (NOTICE, APPLIED, ORDER, EXTENDED, WARRANT):
        _closure_step(state, item, config)
    else:
        raise CaseworkRejected(f"op: unknown case input {item.op!r}")
    state.version += 1
    state.last_at = max(state.last_at, item.at)
    _let_go(state, config)
    if state.kind == ASB:
        out += _asb_threshold(state, item, config)
    else:
        out += _premises_rules(state, item, config)
    if was_routed != state.route and state.enforcement_alerted:
        out.append(ev.CaseRoutedToSafeguarding(
            event_id=ev.derived_event_id("case-routed", case_id(state), state.safeguarding_by),
            case_id=case_id(state), kind=ev.CaseKind(state.kind), mode=ev.Mode(state.mode),
            uprn=state.subject if state.kind == PREMISES else None,
            complainant_key=state.subject if state.kind == ASB else None,
            because_of_incident_id=uuid.UUID(state.safeguarding_by), **_stamp(item.recorded_at),
        ))
    return state, out


def _add_entry(state: CaseState, item: CaseInput) -> None:
    entry = state.entries.get(item.incident_id)
    if entry is None:
        entry = state.entries[item.incident_id] = Entry(
            incident_id=item.incident_id, at=item.at, category=item.category or "other",
            behaviour_at=item.behaviour_at,
        )
    elif item.at < entry.at:  # the earliest complaint about this incident is the one that counts
        entry.at, entry.behaviour_at = item.at, item.behaviour_at if item.behaviour_at is not None else entry.behaviour_at
    if item.agency and item.agency not in entry.agencies:
        entry.agencies = sorted({*entry.agencies, item.agency})
    entry.hate = entry.hate or item.hate
    entry.vulnerable = entry.vulnerable or item.vulnerable
    if item.housing_provider and item.housing_provider not in state.housing_providers:
        state.housing_providers = sorted({*state.housing_providers, item.housing_provider})


def _let_go(state: CaseState, config: CaseworkConfig) -> None:
    """Bound the case: entries past the horizon (config.horizon behind its newest fact) can no
    longer count in any window, and beyond processing.max_entries only the newest are kept (more
    than any rule needs). What is let go is counted in `let_go`; the evidence bundle reads the log."""
    cap = config.processing.max_entries
    horizon = state.last_at - config.horizon
    if len(state.entries) <= cap and all(e.at >= horizon for e in _oldest(state)):
        return
    ordered = sorted(state.entries.values(), key=lambda e: (e.at, e.incident_id))
    keep = [e for e in ordered if e.at >= horizon][-cap:]
    state.let_go += len(ordered) - len(keep)
    state.entries = {e.incident_id: e for e in keep}


def _oldest(state: CaseState) -> list[Entry]:
    """The first entry by insertion (entries are mostly added in time order): a cheap check
    before the full sort."""
    return [next(iter(state.entries.values()))] if state.entries else []


def qualifies(entry: Entry, config: CaseworkConfig) -> bool:
    if entry.behaviour_at is None:
        return True
    return 0 <= entry.at - entry.behaviour_at <= config.asb_case_review.qualify_within


def _threshold(entries: list[Entry], config: CaseworkConfig) -> tuple[int, str]:
    t = config.asb_case_review.thresholds
    options = [(t.default, "default")]
    if any(e.hate for e in entries):
        options.append((t.hate_motivated, "hate_motivated"))
    if any(e.vulnerable for e in entries):
        options.append((t.vulnerable_victim, "vulnerable_victim"))
    return min(options)


def counting(state: CaseState, config: CaseworkConfig) -> list[Entry]:
    """The qualifying complaints not already counted by a review held, oldest first."""
    floor = state.closed_before
    return sorted(
        (e for e in state.entries.values() if qualifies(e, config) and (floor is None or e.at >= floor)),
        key=lambda e: (e.at, e.incident_id),
    )


def best_window(entries: list[Entry], config: CaseworkConfig) -> tuple[list[Entry], int, str]:
    """The window (ending at some complaint) that comes nearest its threshold: the first that
    meets it, else the fullest. Returns its complaints, its threshold and the threshold's basis."""
    window = config.asb_case_review.window
    best: tuple[list[Entry], int, str] | None = None
    for i, last in enumerate(entries):
        inside = [e for e in entries[: i + 1] if last.at - e.at <= window]
        threshold, basis = _threshold(inside, config)
        if len(inside) >= threshold:
            return inside, threshold, basis
        if best is None or threshold - len(inside) < best[1] - len(best[0]):
            best = (inside, threshold, basis)
    if best is None:
        threshold, basis = _threshold([], config)
        return [], threshold, basis
    return best


def _asb_threshold(state: CaseState, item: CaseInput, config: CaseworkConfig) -> list[ev.Event]:
    if state.episode is not None or item.op != COMPLAINT:
        return []
    inside, threshold, basis = best_window(counting(state, config), config)
    if len(inside) < threshold:
        return []
    met_by = inside[-1]
    clocks = config.asb_case_review.clocks
    started = met_by.at
    episode = Episode(
        met_at=started, met_by=met_by.incident_id, threshold=threshold, basis=basis,
        counted=[e.incident_id for e in inside], route=state.route,
        clocks=[
            Clock("decision", started, int(calendar.add_working_days(_dt(started), clocks.decision).timestamp()),
                  working_days=clocks.decision),
            Clock("review", started, int(calendar.add_working_days(_dt(started), clocks.review).timestamp()),
                  working_days=clocks.review),
        ],
    )
    state.episode = episode
    if state.route == "enforcement":
        state.enforcement_alerted = True
    return [ev.AsbCaseReviewThresholdMet(
        event_id=ev.derived_event_id("asb-threshold", case_id(state), episode.met_by, episode.met_at),
        case_id=case_id(state), mode=ev.Mode(state.mode), complainant_key=state.subject, threshold=threshold,
        threshold_basis=basis, complaints=tuple(_entry_out(e, config) for e in inside),
        met_by_incident_id=uuid.UUID(met_by.incident_id), route=ev.CaseRoute(state.route),
        clocks=tuple(_clock_out(c) for c in episode.clocks), housing_providers=tuple(state.housing_providers),
        **_stamp(met_by.at),
    )]


def _respond(state: CaseState, item: CaseInput) -> None:
    episode = state.episode
    if episode is None:
        return
    name = "decision" if item.value == 0 else "review"
    for clock in episode.clocks:
        if clock.name == name and clock.met_at is None:
            clock.met_at = item.at
    if name == "review":  # the review is held: the episode ends, its complaints are spent
        state.closed_before = max(item.at, episode.met_at + 1)
        state.episode = None


def _premises_rules(state: CaseState, item: CaseInput, config: CaseworkConfig) -> list[ev.Event]:
    """Each rule fires at the first report (in time, after it last stopped holding) whose
    window holds enough reports from enough agencies, once per episode: the alert's id is
    the rule's episode, so the same facts in any arrival order raise the same alerts."""
    if item.op != REPORT and item.op != SAFEGUARD:
        return []
    out: list[ev.Event] = []
    entries = sorted(state.entries.values(), key=lambda e: (e.at, e.incident_id))
    for rule in config.premises.rules:
        since = state.fired.get(rule.id)
        if since is not None:
            if _holds(window_ending(entries, entries[-1].at, rule.window), rule):
                continue
            # it stopped holding: re-armed for windows ending after the newest report
            state.fired.pop(rule.id)
            state.rearmed[rule.id] = entries[-1].at
        floor = state.rearmed.get(rule.id)
        for end in entries:
            if floor is not None and end.at <= floor:
                continue
            inside = window_ending(entries, end.at, rule.window)
            if not _holds(inside, rule):
                continue
            state.fired[rule.id] = end.at
            episode = state.episodes.get(rule.id, 0)
            state.episodes[rule.id] = episode + 1
            if state.route == "enforcement":
                state.enforcement_alerted = True
            out.append(ev.PremisesThresholdReached(
                event_id=ev.derived_event_id("premises-threshold", case_id(state), rule.id, episode),
                case_id=case_id(state), mode=ev.Mode(state.mode), uprn=state.subject, rule_id=rule.id,
                reports=tuple(_entry_out(e, config) for e in inside),
                agencies=tuple(ev.Agency(a) for a in sorted({a for e in inside for a in e.agencies})),
                route=ev.CaseRoute(state.route), housing_providers=tuple(state.housing_providers),
                **_stamp(end.at),
            ))
            break
    return out


def _holds(inside: list[Entry], rule) -> bool:
    return len(inside) >= rule.min_reports and len({a for e in inside for a in e.agencies}) >= rule.min_agencies


def window_ending(entries: list[Entry], end: int, size: int) -> list[Entry]:
    return [e for e in entries if end - size <= e.at <= end]


def _closure_step(state: CaseState, item: CaseInput, config: CaseworkConfig) -> None:
    c = config.closure
    at = item.at
    if item.op == NOTICE:
        state.clocks["notice_expires"] = Clock("notice_expires", at, at + int(item.value or 24) * HOUR)
        state.clocks["court_deadline"] = Clock("court_deadline", at, at + c.court_within)
    elif item.op == APPLIED:
        court = state.clocks.get("court_deadline")
        if court is not None and court.met_at is None and item.value is not None and item.value <= court.due_at:
            court.met_at = at
    elif item.op == ORDER:
        for name in ("notice_expires", "court_deadline"):
            if (clock := state.clocks.get(name)) is not None and clock.met_at is None:
                clock.met_at = at
        state.order_made_at = at
        state.clocks["order_expires"] = Clock("order_expires", at, int(item.value or at))
    elif item.op == EXTENDED:
        made = state.order_made_at
        if made is None:
            raise CaseworkRejected("ClosureOrderExtended: no closure order was made for this property")
        limit = int(calendar.add_months(_dt(made), c.order_total_max_months).timestamp())
        if int(item.value or 0) > limit:
            raise CaseworkRejected(
                f"ends_at: a closure order may last {c.order_total_max_months} months in total "
                f"(until {_dt(limit).isoformat()})"
            )
        state.clocks["order_expires"] = Clock("order_expires", made, int(item.value or 0))


# --- the clock ----------------------------------------------------------------------------------


def _warn_before(name: str, config: CaseworkConfig) -> int:
    w = config.closure.warn_before
    return {"notice_expires": w.notice_expires, "court_deadline": w.court_deadline, "order_expires": w.order_expires}.get(
        name, 0
    )


def open_clocks(state: CaseState) -> list[Clock]:
    clocks = list(state.clocks.values())
    if state.episode is not None:
        clocks += state.episode.clocks
    return [c for c in clocks if c.met_at is None]


def due(state: CaseState, now: datetime, config: CaseworkConfig) -> list[ev.Event]:
    """Warnings that have fallen due by `now` and were not sent yet (the state remembers them).
    A closure clock warns `warn_before` ahead; an ASB clock warns when it is overdue unmet."""
    out: list[ev.Event] = []
    t = int(now.timestamp())
    for clock in open_clocks(state):
        ahead = _warn_before(clock.name, config)
        marks = []
        if ahead and t >= clock.due_at - ahead:
            marks.append((f"{clock.name}@{clock.due_at}", clock.due_at - ahead, False))
        if clock.name in ("decision", "review", "court_deadline") and t >= clock.due_at:
            marks.append((f"{clock.name}@{clock.due_at}!", clock.due_at, True))
        for mark, when, overdue in marks:
            if mark in state.warned:
                continue
            state.warned.append(mark)
            out.append(ev.CaseClockWarning(
                event_id=ev.derived_event_id("case-clock", case_id(state), mark), case_id=case_id(state),
                mode=ev.Mode(state.mode), kind=ev.CaseKind(state.kind),
                uprn=state.subject if state.kind == PREMISES else None, clock=_clock_out(clock), overdue=overdue,
                **_stamp(when),
            ))
    return out


def next_due(state: CaseState, config: CaseworkConfig) -> int | None:
    """When `due` will next have something to say (None: nothing pending)."""
    times = []
    for clock in open_clocks(state):
        ahead = _warn_before(clock.name, config)
        if ahead and f"{clock.name}@{clock.due_at}" not in state.warned:
            times.append(clock.due_at - ahead)
        if clock.name in ("decision", "review", "court_deadline") and f"{clock.name}@{clock.due_at}!" not in state.warned:
            times.append(clock.due_at)
    return min(times) if times else None


# --- what goes out ------------------------------------------------------------------------------


def _stamp(epoch: int) -> dict:
    at = _dt(epoch)
    return {"occurred_at": at, "recorded_at": at, "source": SOURCE}


def _entry_out(e: Entry, config: CaseworkConfig) -> ev.CaseEntry:
    return _case_entry(e.incident_id, e.at, e.behaviour_at, e.agencies[0] if e.agencies else None, e.category,
                       qualifies(e, config))


@lru_cache(maxsize=200_000)
def _case_entry(incident_id: str, at: int, behaviour_at: int | None, agency: str | None, category: str,
                ok: bool) -> ev.CaseEntry:
    """An entry as the picture shows it, made once: a big case's picture repeats the same entries
    batch after batch (the model is immutable, so one instance serves every picture)."""
    return ev.CaseEntry(
        incident_id=uuid.UUID(incident_id), at=_dt(at), behaviour_at=_dt(behaviour_at) if behaviour_at is not None else None,
        agency=ev.Agency(agency) if agency is not None else None, category=ev.Category(category), qualifies=ok,
        reason=None if ok else "made more than the qualifying period after the behaviour",
    )


def _clock_out(c: Clock) -> ev.CaseClock:
    return ev.CaseClock(
        name=c.name, started_at=_dt(c.started_at), due_at=_dt(c.due_at),
        met_at=_dt(c.met_at) if c.met_at is not None else None, working_days=c.working_days,
    )


def status(state: CaseState) -> str:
    if state.route == "safeguarding":
        return "with_safeguarding"
    order = state.clocks.get("order_expires")
    notice = state.clocks.get("notice_expires")
    if (order is not None and state.last_at < order.due_at) or (
        notice is not None and notice.met_at is None and state.last_at < notice.due_at
    ):
        return "closure_in_force"
    if state.episode is not None or state.fired:
        return "threshold_met"
    return "watching"


def snapshot(state: CaseState, recorded_at: int, config: CaseworkConfig) -> ev.CaseworkCaseChanged:
    if state.kind == ASB:
        inside, threshold, _ = best_window(counting(state, config), config)
        counted = len(state.episode.counted) if state.episode is not None else len(inside)
    else:
        entries = sorted(state.entries.values(), key=lambda e: (e.at, e.incident_id))
        rules = config.premises.rules
        counted, threshold = max(
            ((len(window_ending(entries, state.last_at, r.window)), -r.min_reports) for r in rules)
        )
        threshold = -threshold
    entries = sorted(state.entries.values(), key=lambda e: (e.at, e.incident_id))[-500:]
    clocks = list(state.clocks.values()) + (state.episode.clocks if state.episode is not None else [])
    return ev.CaseworkCaseChanged(
        event_id=ev.derived_event_id("case-changed", case_id(state), state.version), case_id=case_id(state),
        mode=ev.Mode(state.mode), kind=ev.CaseKind(state.kind),
        complainant_key=state.subject if state.kind == ASB else None,
        uprn=state.subject if state.kind == PREMISES else None, route=ev.CaseRoute(state.route), status=status(state),
        entries=tuple(_entry_out(e, config) for e in entries), counted=counted, threshold=threshold,
        clocks=tuple(_clock_out(c) for c in sorted(clocks, key=lambda c: (c.due_at, c.name))),
        agencies=tuple(ev.Agency(a) for a in sorted({a for e in state.entries.values() for a in e.agencies})),
        housing_providers=tuple(state.housing_providers), as_of=_dt(recorded_at), case_version=state.version,
        **_stamp(recorded_at),
    )
