"""The security half of Kafka administration: ACLs and SCRAM users, through confluent-kafka's
admin client (aiokafka's has neither). Used by the admin tooling only (`muster topics apply |
diff`, `muster partners add | remove`), authenticated as the admin principal.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from services.shared.acl import (
    GROUP, LITERAL, PREFIXED, TOPIC, AclDrift, Binding, acl_drift, partner_bindings, partner_principal,
    service_bindings,
)
from services.shared.settings import Settings
from services.shared.topics import TopicCatalog

SCRAM_ITERATIONS = 8192
TIMEOUT_S = 15.0
PROPAGATION_S = 60.0  # a loaded controller can take tens of seconds to replay an ACL change


class SecurityDisabled(RuntimeError):
    """The broker has no authorizer (a PLAINTEXT broker without ACLs)."""


def _confluent():
    import confluent_kafka
    import confluent_kafka.admin as admin

    return confluent_kafka, admin


def admin_config(settings: Settings) -> dict[str, object]:
    """librdkafka's configuration for the same cluster and credentials as `kafka_client_options`."""
    config: dict[str, object] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol.lower(),
        "socket.timeout.ms": int(TIMEOUT_S * 1000),
        "log_level": 3,
    }
    if settings.kafka_sasl:
        username, password = settings.kafka_credentials()
        config |= {"sasl.mechanisms": settings.kafka_sasl, "sasl.username": username or "",
                   "sasl.password": password or ""}
    for key, value in (("ssl.ca.location", settings.kafka_ssl_cafile),
                       ("ssl.certificate.location", settings.kafka_ssl_certfile),
                       ("ssl.key.location", settings.kafka_ssl_keyfile)):
        if value:
            config[key] = str(value)
    return config


@dataclass
class SecurityAdmin:
    settings: Settings

    def __post_init__(self) -> None:
        self._ck, self._admin = _confluent()
        self.client = self._admin.AdminClient(admin_config(self.settings))

    # --- ACLs ------------------------------------------------------------------------------
    def _to_binding(self, acl) -> Binding:
        operation = acl.operation.name.lower()
        if acl.permission_type.name != "ALLOW" or acl.host != "*":
            operation = f"{operation} ({acl.permission_type.name.lower()} from {acl.host})"
        resource = {"TOPIC": TOPIC, "GROUP": GROUP}.get(acl.restype.name, acl.restype.name.lower())
        pattern = {"LITERAL": LITERAL, "PREFIXED": PREFIXED}.get(acl.resource_pattern_type.name, "other")
        principal = acl.principal.split(":", 1)[1] if ":" in acl.principal else acl.principal
        return Binding(principal, resource, pattern, acl.name, operation)

    def _to_acl(self, b: Binding):
        a = self._admin
        return a.AclBinding(
            a.ResourceType[b.resource.upper()], b.name, a.ResourcePatternType[b.pattern.upper()],
            f"User:{b.principal}", "*", a.AclOperation[b.operation.upper()], a.AclPermissionType.ALLOW,
        )

    def _filter(self, principal: str | None = None):
        a = self._admin
        return a.AclBindingFilter(
            a.ResourceType.ANY, None, a.ResourcePatternType.ANY, f"User:{principal}" if principal else None,
            None, a.AclOperation.ANY, a.AclPermissionType.ANY,
        )

    def _acls(self, principal: str | None = None) -> list:
        try:
            acls = self.client.describe_acls(self._filter(principal), request_timeout=TIMEOUT_S).result()
            if not acls:
                self._probe_authorizer()
            return acls
        except self._ck.KafkaException as exc:
            if exc.args and exc.args[0].code() == self._ck.KafkaError.SECURITY_DISABLED:
                raise SecurityDisabled("the broker has no authorizer: ACLs need the secured broker") from None
            raise

    def _probe_authorizer(self) -> None:
        """A broker without an authorizer answers DescribeAcls with nothing, but DeleteAcls with
        SECURITY_DISABLED: delete an ACL no one can hold to tell the two apart."""
        a = self._admin
        nobody = a.AclBindingFilter(a.ResourceType.TOPIC, "muster-authorizer-probe", a.ResourcePatternType.LITERAL,
                                    "User:muster-authorizer-probe", None, a.AclOperation.ANY, a.AclPermissionType.ANY)
        for future in self.client.delete_acls([nobody], request_timeout=TIMEOUT_S).values():
            future.result()

    def bindings(self) -> set[Binding]:
        return {self._to_binding(acl) for acl in self._acls()}

    def create(self, bindings: list[Binding]) -> None:
        if not bindings:
            return
        futures = self.client.create_acls([self._to_acl(b) for b in bindings], request_timeout=TIMEOUT_S)
        for future in futures.values():
            future.result()
        self._await(lambda held: set(bindings) <= held, "the new ACLs")

    def _await(self, done, what: str) -> None:
        """ACL changes go through the controller; the broker authorizes with them once it has replayed
        the metadata. DescribeAcls answers from the broker's own authorizer: wait until it agrees."""
        deadline = time.monotonic() + PROPAGATION_S
        while not done(self.bindings()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker did not show {what} within {PROPAGATION_S}s")
            time.sleep(0.1)

    def delete(self, bindings: list[Binding]) -> None:
        """Delete exactly these bindings (an extra one that is DENY or host-bound is matched by resource,
        principal and operation name)."""
        a = self._admin
        filters = []
        for b in bindings:
            operation = b.operation.split(" ", 1)[0].upper()
            restype = a.ResourceType[b.resource.upper()] if b.resource.upper() in a.ResourceType.__members__ else a.ResourceType.ANY
            pattern = a.ResourcePatternType[b.pattern.upper()] if b.pattern in (LITERAL, PREFIXED) else a.ResourcePatternType.ANY
            filters.append(a.AclBindingFilter(restype, b.name, pattern, f"User:{b.principal}", None,
                                              a.AclOperation[operation], a.AclPermissionType.ANY))
        if not filters:
            return
        for future in self.client.delete_acls(filters, request_timeout=TIMEOUT_S).values():
            future.result()
        gone = {(b.principal, b.resource, b.name, b.operation) for b in bindings}
        self._await(lambda held: not gone & {(b.principal, b.resource, b.name, b.operation) for b in held},
                    "the ACLs deleted")

    def drift(self, catalog: TopicCatalog) -> AclDrift:
        return acl_drift(catalog, self.bindings())

    def apply(self, catalog: TopicCatalog) -> list[str]:
        """Create the missing service grants, delete whatever topics.yaml does not allow. Idempotent."""
        drift = self.drift(catalog)
        self.create(drift.missing)
        self.delete(drift.extra)
        return [f"acl added: {b.line()}" for b in drift.missing] + [f"acl removed: {b.line()}" for b in drift.extra]

    # --- SCRAM users ----------------------------------------------------------------------
    def users(self) -> set[str]:
        try:
            described = self.client.describe_user_scram_credentials(request_timeout=TIMEOUT_S).result()
        except self._ck.KafkaException:
            return set()
        return set(described)

    def set_password(self, user: str, password: str) -> None:
        a = self._admin
        info = a.ScramCredentialInfo(a.ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        futures = self.client.alter_user_scram_credentials(
            [a.UserScramCredentialUpsertion(user, info, password.encode())], request_timeout=TIMEOUT_S)
        for future in futures.values():
            future.result()

    def delete_user(self, user: str) -> None:
        a = self._admin
        futures = self.client.alter_user_scram_credentials(
            [a.UserScramCredentialDeletion(user, a.ScramMechanism.SCRAM_SHA_512)], request_timeout=TIMEOUT_S)
        for future in futures.values():
            try:
                future.result()
            except self._ck.KafkaException as exc:  # RESOURCE_NOT_FOUND: no credential left to delete
                if "RESOURCE_NOT_FOUND" not in str(exc) and "not found" not in str(exc).lower():
                    raise

    # --- partners -------------------------------------------------------------------------
    def add_partner(self, catalog: TopicCatalog, agency: str, *, exercise: bool) -> tuple[str, str]:
        """Make the agency's principal with a fresh password and its grants. Returns (user, password):
        shown once, never stored by Muster."""
        grants = partner_bindings(catalog, agency, exercise=exercise)
        user = partner_principal(catalog, agency)
        if user in self.users():
            raise ValueError(f"partner {agency!r} exists already ({user}): `muster partners remove {agency}` first")
        password = secrets.token_urlsafe(32)
        self.set_password(user, password)
        self.create(sorted(grants))
        return user, password

    def remove_partner(self, catalog: TopicCatalog, agency: str) -> list[str]:
        """Revoke every grant of the agency's principal and delete its credentials."""
        user = partner_principal(catalog, agency)
        held = sorted(self._to_binding(acl) for acl in self._acls(user))
        self.delete(held)
        self.delete_user(user)
        return [f"acl removed: {b.line()}" for b in held] + [f"user removed: {user}"]

    def service_grants(self, catalog: TopicCatalog) -> set[Binding]:
        return service_bindings(catalog)


def apply_acls(settings: Settings, catalog: TopicCatalog) -> list[str]:
    """`topics apply`'s ACL half: what changed, or why nothing could (a broker without an authorizer)."""
    try:
        return SecurityAdmin(settings).apply(catalog)
    except SecurityDisabled as exc:
        return [f"acls: skipped ({exc})"]


def diff_acls(settings: Settings, catalog: TopicCatalog) -> AclDrift | None:
    """`topics diff`'s ACL half; None on a broker without an authorizer (nothing to compare)."""
    try:
        return SecurityAdmin(settings).drift(catalog)
    except SecurityDisabled:
        return None


def remove_acls_under(settings: Settings, prefix: str) -> int:
    """Delete every ACL on a resource, or of a principal, under a topic prefix (a test run's, when its
    topics go); how many. Nothing on a broker without an authorizer."""
    if not prefix:
        raise ValueError("refusing to remove the ACLs of every topic: give a prefix")
    try:
        admin = SecurityAdmin(settings)
        mine = [b for b in admin.bindings() if b.name.startswith(prefix) or b.principal.startswith(prefix)]
    except SecurityDisabled:
        return 0
    admin.delete(mine)
    return len(mine)
