"""The auditor's checks: pure functions of what it read (the log, the store, the harness's
ledger and samples). Each returns a Check: its name, the violations found (each a line a
reviewer can follow up) and the figures it counted."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from services.chaos.audit.contract import (
    ACKNOWLEDGING, DEADLINE_RULE, STATUS_RANK, TERMINAL, Contract,
)
from services.chaos.audit.sources import STORE_TABLES, Rec

SHOWN = 10  # violations listed per check (the count is always complete)


@dataclass
class Check:
    name: str
    violations: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    count: int = 0  # every violation, also those not listed

    def fail(self, line: str) -> None:
        self.count += 1
        if len(self.violations) < SHOWN:
            self.violations.append(line)

    @property
    def ok(self) -> bool:
        return self.count == 0


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Log:
    """The incidents topic and the escalation topics, decoded through the published schemas."""

    facts: list[tuple[Rec, dict]]  # valid incident facts, in log order per partition
    poison: list[Rec]  # records of the incidents topic no schema accepts
    escalations: dict[str, list[tuple[Rec, dict]]]  # topic id -> valid escalation events
    superseded: int = 0  # older-version copies skipped (same event_id as the fact they follow)

    @classmethod
    def read(cls, contract: Contract, records: dict[str, list[Rec]]) -> "Log":
        facts, poison, superseded = [], [], 0
        for rec in records.get("incidents", []):
            event = contract.decode(rec.value)
            if event is None:
                poison.append(rec)
            elif contract.superseded(event["event_type"], rec.header("newer_schema_version")):
                superseded += 1
            else:
                facts.append((rec, event))
        escalations = {}
        for spec in contract.escalation_topics():
            escalations[spec.id] = [(r, e) for r in records.get(spec.id, []) if (e := contract.decode(r.value))]
        return cls(facts, poison, escalations, superseded)

    def mode_of(self) -> dict[str, str]:
        """Each incident's mode, from its report (else its first fact)."""
        modes: dict[str, str] = {}
        for _, e in self.facts:
            if e["event_type"] == "IncidentReported" or e["incident_id"] not in modes:
                modes[e["incident_id"]] = e.get("mode", "live")
        return modes


def acknowledged_writes(log: Log, ledger: list[dict], store: dict) -> Check:
    """Every write intake acknowledged is on the incidents topic exactly once (by event_id), at
    the partition and offset intake gave, and in the status store; refused writes are nowhere."""
    c = Check("acknowledged writes: exactly once on the topic and in the store; refused writes nowhere")
    on_topic = Counter(e["event_id"] for _, e in log.facts)
    at = {(r.partition, r.offset): e["event_id"] for r, e in log.facts}
    where: dict[str, list[Rec]] = defaultdict(list)
    for r, e in log.facts:
        if on_topic[e["event_id"]] > 1:
            where[e["event_id"]].append(r)
    in_store = {str(r["event_id"]) for r in store.get("incident_events", [])}
    acks = {e["event_id"]: e for e in ledger if e["kind"] == "ack"}
    for event_id, ack in acks.items():
        n = on_topic.get(event_id, 0)
        if n != 1:
            copies = ", ".join(f"[{r.partition}]@{r.offset} {datetime.fromtimestamp(r.timestamp):%H:%M:%S.%f}"[:-3]
                               for r in where.get(event_id, []))
            c.fail(f"acknowledged {event_id} ({ack['event_type']}, acknowledged "
                   f"{datetime.fromtimestamp(ack['t']):%H:%M:%S}) is on the incidents topic {n} times: {copies}")
        elif at.get((ack["partition"], ack["offset"])) != event_id:
            c.fail(f"acknowledged {event_id} at partition {ack['partition']} offset {ack['offset']}, "
                   f"but that record is {at.get((ack['partition'], ack['offset']))}")
        if event_id not in in_store:
            c.fail(f"acknowledged {event_id} is not in the status store")
    refused = [e for e in ledger if e["kind"] == "refused"]
    for e in refused:
        if e["event_id"] in on_topic or e["event_id"] in in_store:
            c.fail(f"refused write {e['event_id']} (HTTP {e['status']}) is on the topic or in the store")
    for e in ledger:
        if e["kind"] == "unexpected":
            c.fail(f"intake refused a valid write {e['event_id']} with {e['status']}: {e['detail'][:120]}")
    duplicated = sum(1 for n in on_topic.values() if n > 1)
    unknown = [e for e in ledger if e["kind"] == "unknown"]
    c.stats = {"acknowledged": len(acks), "refused": len(refused), "facts_on_topic": len(log.facts),
               "older_version_copies_skipped": log.superseded,
               "event_ids_on_topic_more_than_once": duplicated,
               "never_acknowledged_after_retries": len(unknown),
               "of_those_on_the_topic": sum(1 for e in unknown if e["event_id"] in on_topic)}
    return c


def fold(log: Log) -> dict[str, dict]:
    """The auditor's own fold of the log into the columns docs/projector.md documents."""
    states: dict[str, dict] = {}
    seen: set[str] = set()
    events = [(r, e, False) for r, e in log.facts]
    for spec_id in ("escalations.all", "escalations.exercise.all"):
        events += [(r, e, True) for r, e in log.escalations.get(spec_id, [])]
    for _, e, derived in events:
        if e["event_id"] in seen:
            continue
        seen.add(e["event_id"])
        s = states.get(e["incident_id"])
        if s is None:
            s = states[e["incident_id"]] = {"version": 0, "status": "open", "rank": 0, "status_at": None,
                                            "reported": False, "mode": e.get("mode", "live"), "escalation_level": 0,
                                            "category": None, "severity": None}
        s["version"] += 1
        kind = e["event_type"]
        if derived:
            if kind == "EscalationRaised":
                s["escalation_level"] = max(s["escalation_level"], e["level"])
            continue
        if kind == "IncidentReported":
            first = s["version"] == 1
            for f in ("category", "severity"):
                if first or s[f] is None:
                    s[f] = e.get(f)
            s["reported"], s["mode"] = True, e.get("mode", "live")
            if s["status_at"] is None:
                s["status_at"] = _ts(e["occurred_at"])
        elif kind == "IncidentUpdated":
            for f in ("category", "severity"):
                if e.get(f) is not None:
                    s[f] = e[f]
        status = {"IncidentAcknowledged": "acknowledged", "ResponderDispatched": "dispatched",
                  "ResponderArrived": "on_scene"}.get(kind) or (e["status"] if kind == "IncidentStatusChanged" else None)
        if status is not None:
            rank, at = STATUS_RANK[status], _ts(e["occurred_at"])
            if rank > s["rank"] or (rank == s["rank"] and status != s["status"]
                                    and (s["status_at"] is None or at > s["status_at"])):
                s["status"], s["rank"], s["status_at"] = status, rank, at
    return states


FOLDED = ("version", "status", "reported", "mode", "escalation_level", "category", "severity")


def store_is_the_fold(log: Log, store: dict) -> Check:
    c = Check("the status store equals a fold of the log")
    expected = fold(log)
    rows = {str(r["incident_id"]): r for r in store.get("incidents", [])}
    for incident_id in expected.keys() - rows.keys():
        c.fail(f"incident {incident_id} is on the log but not in the store")
    for incident_id in rows.keys() - expected.keys():
        c.fail(f"incident {incident_id} is in the store but not on the log")
    for incident_id in expected.keys() & rows.keys():
        want, got = expected[incident_id], rows[incident_id]
        wrong = [f"{f}: store {got[f]!r}, log {want[f]!r}" for f in FOLDED if got[f] != want[f]]
        if wrong:
            c.fail(f"incident {incident_id}: " + "; ".join(wrong))
    c.stats = {"incidents_on_log": len(expected), "incidents_in_store": len(rows)}
    return c


def rebuild_equals_live(live: dict, rebuilt: dict | None) -> Check:
    c = Check("a rebuild of the store equals the live store")
    if not rebuilt or "error" in rebuilt:
        c.fail(f"no rebuild to compare: {(rebuilt or {}).get('error', 'not run')}")
        return c
    for table, rows in live.items():
        key = STORE_TABLES[table]
        mine = {tuple(r[k] for k in key): r for r in rows}
        theirs = {tuple(r[k] for k in key): r for r in rebuilt.get(table, [])}
        for k in mine.keys() - theirs.keys():
            c.fail(f"{table} {_key_text(k)}: live, not in the rebuild")
        for k in theirs.keys() - mine.keys():
            c.fail(f"{table} {_key_text(k)}: in the rebuild, not live")
        for k in sorted(mine.keys() & theirs.keys(), key=repr):
            a, b = mine[k], theirs[k]
            differ = [f"{col}: live {a.get(col)!r}, rebuilt {b.get(col)!r}"
                      for col in sorted(a.keys() | b.keys()) if a.get(col) != b.get(col)]
            if differ:
                c.fail(f"{table} {_key_text(k)}: " + "; ".join(differ))
        c.stats[table] = len(rows)
    return c


def _key_text(key: tuple) -> str:
    return "/".join(str(k) for k in key)


def escalated_once(log: Log, contract: Contract) -> Check:
    """Each (incident, level) raised under one event_id, on the all-agencies topic and on each
    agency topic it names; nothing on an agency topic the raise does not name."""
    c = Check("each (incident, level) escalated exactly once")
    ids: dict[tuple[str, int], set[str]] = defaultdict(set)
    copies = 0
    for mode in ("live", "exercise"):
        every = contract.all_topic(mode)
        per: dict[tuple[str, int], Counter] = defaultdict(Counter)
        for _, e in log.escalations.get(every.id, []):
            if e["event_type"] == "EscalationRaised":
                ids[(e["incident_id"], e["level"])].add(e["event_id"])
                per[(e["incident_id"], e["level"])][e["event_id"]] += 1
        copies += sum(n - 1 for counts in per.values() for n in counts.values())
        raised = {e["event_id"]: e for _, e in log.escalations.get(every.id, []) if e["event_type"] == "EscalationRaised"}
        for spec in contract.escalation_topics(mode):
            if spec.agency is None:
                continue
            seen = defaultdict(set)
            for _, e in log.escalations.get(spec.id, []):
                if e["event_type"] != "EscalationRaised":
                    continue
                seen[(e["incident_id"], e["level"])].add(e["event_id"])
                if spec.agency not in e["agencies"]:
                    c.fail(f"{spec.name}: raise {e['event_id']} does not name {spec.agency}")
                if e["event_id"] not in raised:
                    c.fail(f"{spec.name}: raise {e['event_id']} is not on {every.name}")
            for e in raised.values():
                if spec.agency in e["agencies"] and e["event_id"] not in seen[(e["incident_id"], e["level"])]:
                    c.fail(f"raise {e['event_id']} names {spec.agency} but is not on {spec.name}")
            for key, v in seen.items():
                if len(v) > 1:
                    c.fail(f"{spec.name}: ({key[0]}, level {key[1]}) raised under {len(v)} event ids")
    for (incident, level), v in ids.items():
        if len(v) > 1:
            c.fail(f"({incident}, level {level}) raised under {len(v)} event ids: {sorted(v)}")
    c.stats = {"raised": len(ids), "repeated_copies_same_event_id": copies}
    return c


def deadlines(log: Log, contract: Contract, deadline_for: dict[int, float], climb_limit: int,
              allowance: "callable", until: float) -> Check:
    """Every acknowledgement deadline that fell due (before `until`) while the incident was
    unacknowledged, open, unlinked and below the climb limit was escalated at its deadline, and
    published by the deadline plus the recovery time of any fault it fell into."""
    c = Check("every acknowledgement deadline that fell due was escalated in time")
    facts: dict[str, list[dict]] = defaultdict(list)
    logged_at: dict[str, float] = {}
    for r, e in log.facts:
        facts[e["incident_id"]].append(e)
        logged_at.setdefault(e["event_id"], r.timestamp)
    raises: dict[str, list[tuple[Rec, dict]]] = defaultdict(list)
    related: set[str] = set()
    for mode in ("live", "exercise"):
        for r, e in log.escalations.get(contract.all_topic(mode).id, []):
            if e["event_type"] == "EscalationRaised":
                raises[e["incident_id"]].append((r, e))
            if e["event_type"] in ("EscalationRaised", "EscalationUpdated"):
                # a report correlated into a lead escalates with the lead, not on its own (docs/escalation.md)
                related.update(e.get("related_incident_ids") or ())
    checked = late = 0
    worst = 0.0
    for incident, events in facts.items():
        report = next((e for e in events if e["event_type"] == "IncidentReported"), None)
        if report is None or incident in related or report.get("severity") not in deadline_for:
            continue
        seen_ids: set[str] = set()
        unique = [e for e in events if not (e["event_id"] in seen_ids or seen_ids.add(e["event_id"]))]
        step = deadline_for[report["severity"]]
        t0 = _ts(report["occurred_at"])
        logged = logged_at[report["event_id"]]
        stops = [_ts(e["occurred_at"]) for e in unique if e["event_type"] in ACKNOWLEDGING
                 or e["event_type"] == "IncidentLinked"
                 or (e["event_type"] == "IncidentStatusChanged" and (e["status"] in TERMINAL or STATUS_RANK[e["status"]] >= 1))]
        stop = min(stops, default=float("inf"))
        k = 1
        while True:
            due = t0 + k * step
            if due >= stop or due > until:
                break
            level = max((e["level"] for r, e in raises[incident] if _ts(e["occurred_at"]) <= due + 0.5), default=0)
            if level >= climb_limit:
                break
            checked += 1
            match = [(r, e) for r, e in raises[incident]
                     if e.get("rule_id") == DEADLINE_RULE and abs(_ts(e["occurred_at"]) - due) < 1.5]
            if not match:
                c.fail(f"incident {incident}: deadline {k} (due {datetime.fromtimestamp(due):%H:%M:%S}) never escalated")
                break
            published = min(r.timestamp for r, _ in match)
            worst = max(worst, published - max(due, logged))
            # a report that reached the log after its deadline (intake was down) escalates on arrival
            if published > max(due, logged) + allowance(max(due, logged)):
                late += 1
                c.fail(f"incident {incident}: deadline {k} escalated {published - max(due, logged):.1f}s after it "
                       f"fell due (allowed {allowance(max(due, logged)):.1f}s)")
            k += 1
    c.stats = {"deadlines_due": checked, "late": late, "worst_seconds_after_due": round(worst, 2)}
    return c


def modes_kept_apart(log: Log, contract: Contract, records: dict[str, list[Rec]]) -> Check:
    c = Check("no exercise or test fact on a live topic")
    modes = log.mode_of()
    n = 0
    for spec in contract.live_topics():
        for r in records.get(spec.id, []):
            e = contract.decode(r.value)
            if e is None:
                c.fail(f"{spec.name}[{r.partition}]@{r.offset}: not a valid {'/'.join(spec.event_types)}")
                continue
            n += 1
            if e.get("mode", "live") != "live":
                c.fail(f"{spec.name}: {e['event_type']} {e['event_id']} has mode {e.get('mode')}")
            if "incident_id" in e and modes.get(e["incident_id"], "live") != "live":
                c.fail(f"{spec.name}: {e['event_id']} is about {modes[e['incident_id']]} incident {e['incident_id']}")
            for contributor in e.get("top_contributors") or ():
                for incident in contributor.get("incident_ids", ()):
                    if modes.get(incident, "live") != "live":
                        c.fail(f"{spec.name}: {e['event_id']} counts {modes[incident]} incident {incident}")
    c.stats = {"records_on_live_topics": n}
    return c


def http_outcomes(ledger: list[dict], bound: float) -> Check:
    """During outages intake answers 503 with Retry-After; never another 5xx, never a hang."""
    c = Check("only 503 with Retry-After during outages; never a 500, never a hang")
    statuses: Counter = Counter()
    for e in ledger:
        if e["kind"] != "request":
            continue
        statuses[str(e["status"] or e["error"])] += 1
        status = e["status"]
        if e.get("error") == "timeout" or e["seconds"] > bound:
            c.fail(f"{e['path']} at {datetime.fromtimestamp(e['began']):%H:%M:%S} took {e['seconds']:.1f}s "
                   f"(bound {bound:.0f}s){' and timed out' if e.get('error') == 'timeout' else ''}")
        elif status is not None and status >= 500 and status != 503:
            c.fail(f"{e['path']} answered {status} at {datetime.fromtimestamp(e['began']):%H:%M:%S}")
        elif status == 503 and not e.get("retry_after"):
            c.fail(f"{e['path']} answered 503 without Retry-After at {datetime.fromtimestamp(e['began']):%H:%M:%S}")
    c.stats = {"requests_by_outcome": dict(statuses)}
    return c


def poison_dead_lettered(log: Log, contract: Contract, records: dict[str, list[Rec]], poison: list[dict],
                         ledger: list[dict], store: dict, storm: tuple[float, float] | None) -> Check:
    """Every poison record sent is dead-lettered by every processor that reads the incidents
    topic, with its source partition and offset; good writes acknowledged during the storm
    reached the store (the partitions kept flowing)."""
    c = Check("poison records all dead-lettered; partitions kept flowing")
    readers = contract.readers_of("incidents")
    incidents = contract.topic("incidents").name
    lettered: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for r in records.get("deadletter", []):
        e = contract.decode(r.value)
        if e is None:
            c.fail(f"deadletter[{r.partition}]@{r.offset}: not a valid DeadLetter")
            continue
        if e["source_topic"] == incidents:
            lettered[e["service"]].add((e["source_partition"], e["source_offset"]))
    sent = {(p["partition"], p["offset"]) for p in poison}
    for service in readers:
        missing = sent - lettered[service]
        if missing:
            c.fail(f"{service}: {len(missing)} of {len(sent)} poison records not dead-lettered, "
                   f"e.g. partition {min(missing)[0]} offset {min(missing)[1]}")
    refused = {(r.partition, r.offset) for r in log.poison}  # once: a storm is tens of thousands of records
    valid_by_mistake = [p for p in poison if (p["partition"], p["offset"]) not in refused]
    for p in valid_by_mistake[:1]:
        c.fail(f"a storm record at partition {p['partition']} offset {p['offset']} passed the schemas")
    flowing = 0
    if storm:
        in_store = {str(r["event_id"]) for r in store.get("incident_events", [])}
        during = [e for e in ledger if e["kind"] == "ack" and storm[0] <= e["t"] <= storm[1]]
        flowing = sum(1 for e in during if e["event_id"] in in_store)
        partitions = {e["partition"] for e in during}
        if during and flowing < len(during):
            c.fail(f"{len(during) - flowing} writes acknowledged during the storm never reached the store")
        if not during:
            c.fail("no write was acknowledged during the storm")
        c.stats["partitions_with_acknowledged_writes_during_storm"] = len(partitions)
    c.stats.update({"poison_sent": len(sent), "readers": list(readers),
                    "dead_lettered": {s: len(lettered[s] & sent) for s in readers},
                    "acknowledged_during_storm_in_store": flowing})
    return c


ALERT_TOPICS = ("tension.alerts", "tension.alerts.exercise")  # live alerts; exercise and test alerts


def _alert(e: dict) -> str:
    return (f"{e.get('ward_code')} {e.get('old_level')}->{e.get('new_level')} at {e.get('occurred_at')} "
            f"(window ending {e.get('window_end')}, {e.get('event_id')})")


def tension_replayed(contract: Contract, records: dict[str, list[Rec]], replayed: list[bytes] | str) -> Check:
    """The alerts on the tension alerts topics equal an offline replay of the log: the lines of
    the tension service's own replay (`muster tension replay --all`, run as a separate process,
    docs/chaos.md), each decoded through the published schema like any record. Every alert the
    replay raises is on its topic (live ones on the live topic, exercise and test ones on the
    exercise topic) with the same content, and nothing else is; a restart may publish an alert
    again, under its event_id and with the same content."""
    c = Check("tension alerts equal an offline replay")
    if isinstance(replayed, str):
        c.fail(f"no offline replay to compare: {replayed}")
        return c
    want: dict[str, dict[str, dict]] = {t: {} for t in ALERT_TOPICS}
    for n, line in enumerate(replayed, 1):
        e = contract.decode(line)
        if e is None or e.get("event_type") != "TensionLevelChanged":
            c.fail(f"replay line {n}: not a valid TensionLevelChanged: {line[:80]!r}")
            continue
        want[ALERT_TOPICS[0] if e.get("mode", "live") == "live" else ALERT_TOPICS[1]][e["event_id"]] = e
    on_topics = again = 0
    for topic_id in ALERT_TOPICS:
        name = contract.topic(topic_id).name
        got: dict[str, dict] = {}
        for r in records.get(topic_id, []):
            e = contract.decode(r.value)
            if e is None or e.get("event_type") != "TensionLevelChanged":
                c.fail(f"{name}[{r.partition}]@{r.offset}: not a valid TensionLevelChanged")
                continue
            if contract.superseded(e["event_type"], r.header("newer_schema_version")):
                continue  # the older-version copy of an alert read in its newer version
            on_topics += 1
            prior = got.get(e["event_id"])
            if prior is not None:
                again += 1
                if prior != e:
                    c.fail(f"{name}: {e['event_id']} published twice with different content")
                continue
            got[e["event_id"]] = e
        expected = want[topic_id]
        for event_id in sorted(expected.keys() - got.keys()):
            c.fail(f"{name}: the replay raises {_alert(expected[event_id])}, not on the topic")
        for event_id in sorted(got.keys() - expected.keys()):
            c.fail(f"{name}: {_alert(got[event_id])} is on the topic, the replay does not raise it")
        for event_id in sorted(expected.keys() & got.keys()):
            a, b = got[event_id], expected[event_id]
            fields = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            if fields:
                c.fail(f"{name}: {_alert(a)} differs from the replay in "
                       + "; ".join(f"{k}: topic {a.get(k)!r}, replay {b.get(k)!r}" for k in fields[:3]))
    c.stats = {"alerts_on_topics": on_topics, "published_again_same_id": again,
               "replayed": {t: len(v) for t, v in want.items()}}
    return c
