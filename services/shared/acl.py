"""Kafka ACLs generated from topics.yaml (pure), and the admin adapter that applies them.

`producers` and `readers` of every topic are authoritative: each names a principal of
topics.yaml (or `partner`, the partner principal of the topic's agency). A producer may
WRITE and DESCRIBE the topic, a reader READ and DESCRIBE it; a principal with a
`group_prefix` may use the consumer groups that begin with it, one with an
`internal_topics_prefix` may create and use the internal topics that begin with it. Nothing
else is granted, and the broker refuses whatever no ACL allows.

Partners are principals made at run time (`muster partners add <agency>`): `partner-<agency>`
(after the topic prefix), which may read only its agency's escalation topics (live, and
exercise when asked) with consumer groups beginning `partner-<agency>.`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.shared.topics import PARTNER, TopicCatalog

TOPIC, GROUP = "topic", "group"
LITERAL, PREFIXED = "literal", "prefixed"


@dataclass(frozen=True, order=True)
class Binding:
    """One ALLOW ACL for any host: principal (a user name) may do operation on a resource."""

    principal: str
    resource: str  # topic | group
    pattern: str  # literal | prefixed
    name: str
    operation: str  # read | write | describe | create | describe_configs

    def line(self) -> str:
        star = "*" if self.pattern == PREFIXED else ""
        return f"User:{self.principal} {self.operation} {self.resource} {self.name}{star}"

    @property
    def resource_key(self) -> tuple[str, str, str]:
        return (self.resource, self.pattern, self.name)


def partner_principal(catalog: TopicCatalog, agency: str) -> str:
    return f"{catalog.prefix}partner-{agency}"


def partner_group_prefix(catalog: TopicCatalog, agency: str) -> str:
    return f"{catalog.prefix}partner-{agency}."


def _grant(principal: str, resource: str, pattern: str, name: str, *operations: str) -> set[Binding]:
    return {Binding(principal, resource, pattern, name, op) for op in operations}


def service_bindings(catalog: TopicCatalog) -> set[Binding]:
    """Every ACL the services' principals must have, exactly."""
    wanted: set[Binding] = set()
    for topic in catalog:
        name = catalog.name_of(topic)
        for who in topic.producers:
            wanted |= _grant(who, TOPIC, LITERAL, name, "write", "describe")
        for who in topic.readers:
            if who != PARTNER:
                wanted |= _grant(who, TOPIC, LITERAL, name, "read", "describe")
    for who, spec in catalog.spec.principals.items():
        if spec.group_prefix:
            wanted |= _grant(who, GROUP, PREFIXED, catalog.prefix + spec.group_prefix, "read", "describe")
        if spec.internal_topics_prefix:
            wanted |= _grant(who, TOPIC, PREFIXED, catalog.prefix + spec.internal_topics_prefix,
                             "create", "read", "write", "describe", "describe_configs")
    return wanted


def partner_bindings(catalog: TopicCatalog, agency: str, *, exercise: bool) -> set[Binding]:
    """What a partner agency's principal may do: read its agency's escalation topics."""
    if agency not in catalog.agencies():
        raise ValueError(f"agency {agency!r} has no topics in topics.yaml (have {', '.join(catalog.agencies())})")
    who = partner_principal(catalog, agency)
    wanted: set[Binding] = set()
    for topic in catalog:
        if topic.agency == agency and PARTNER in topic.readers and (topic.mode == "live" or exercise):
            wanted |= _grant(who, TOPIC, LITERAL, catalog.name_of(topic), "read", "describe")
    wanted |= _grant(who, GROUP, PREFIXED, partner_group_prefix(catalog, agency), "read", "describe")
    return wanted


def managed_resources(catalog: TopicCatalog) -> set[tuple[str, str, str]]:
    """The resources whose ACLs topics.yaml decides: every topic, group and internal prefix it names."""
    resources = {(TOPIC, LITERAL, catalog.name_of(t)) for t in catalog}
    for spec in catalog.spec.principals.values():
        if spec.group_prefix:
            resources.add((GROUP, PREFIXED, catalog.prefix + spec.group_prefix))
        if spec.internal_topics_prefix:
            resources.add((TOPIC, PREFIXED, catalog.prefix + spec.internal_topics_prefix))
    for agency in catalog.agencies():
        resources.add((GROUP, PREFIXED, partner_group_prefix(catalog, agency)))
    return resources


@dataclass
class AclDrift:
    missing: list[Binding] = field(default_factory=list)
    extra: list[Binding] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.missing or self.extra)

    def lines(self) -> list[str]:
        return [f"acl missing: {b.line()}" for b in self.missing] + [f"acl extra: {b.line()}" for b in self.extra]


def acl_drift(catalog: TopicCatalog, actual: set[Binding]) -> AclDrift:
    """Missing: a service grant topics.yaml asks for. Extra: any grant on a managed resource that
    neither a service's grants nor a partner's (within its own agency's) allow."""
    wanted = service_bindings(catalog)
    allowed = set(wanted)
    for agency in catalog.agencies():
        allowed |= partner_bindings(catalog, agency, exercise=True)
    managed = managed_resources(catalog)
    on_managed = {b for b in actual if _touches(b, managed)}
    return AclDrift(missing=sorted(wanted - actual), extra=sorted(on_managed - allowed))


def _touches(binding: Binding, managed: set[tuple[str, str, str]]) -> bool:
    """Is this ACL on a managed resource, or one that covers it (the `*` wildcard, a shorter prefix)?"""
    if binding.resource_key in managed:
        return True
    for resource, _pattern, name in managed:
        if resource != binding.resource:
            continue
        if binding.pattern == LITERAL and binding.name == "*":
            return True
        if binding.pattern == PREFIXED and name.startswith(binding.name):
            return True
    return False
