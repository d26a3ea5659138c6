-- A database role per service (services/shared/sql/roles.sql makes the roles; docs/security.md).
-- The status store belongs to muster_owner; the projector writes it without owning it; the
-- audit of sensitive reads belongs to muster_audit, a role no service holds, so neither the
-- query service that appends to it nor the owner can disable its trigger or rewrite it.
-- Tables are never schema-qualified (the rebuild applies this into its shadow schema).

grant select, insert, update, delete on incidents, incident_events, escalations, ward_tension,
    ward_tension_history, projector_offsets to muster_projector;
grant usage on schema muster_access to muster_projector;
revoke all on access_audit from muster_projector;

do $admin$
declare
    t text;
    is_admin boolean := (select rolsuper from pg_roles where rolname = current_user);
begin
    if not is_admin then
        return;  -- run as muster_owner itself: it owns what it made; the administrator hands over the audit
    end if;
    foreach t in array array['incidents', 'incident_events', 'escalations', 'ward_tension', 'ward_tension_history',
                             'projector_offsets', 'schema_migrations'] loop
        execute format('alter table %I owner to muster_owner', t);
    end loop;
    -- The append-only trigger's function too, in a schema of the audit role's own: the owner of
    -- muster_access could otherwise replace the function's body (or drop it, and the trigger with it).
    execute 'create schema if not exists muster_audit authorization muster_audit';
    execute $f$create or replace function muster_audit.append_only() returns trigger
        language plpgsql as $b$
        begin
            raise exception 'access_audit is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
        end
        $b$$f$;
    execute 'alter function muster_audit.append_only() owner to muster_audit';
    execute 'drop trigger if exists access_audit_no_change on access_audit';
    execute 'drop trigger if exists access_audit_no_truncate on access_audit';
    execute 'create trigger access_audit_no_change before update or delete on access_audit
        for each row execute function muster_audit.append_only()';
    execute 'create trigger access_audit_no_truncate before truncate on access_audit
        for each statement execute function muster_audit.append_only()';
    execute 'alter table access_audit owner to muster_audit';
    execute 'alter schema muster_access owner to muster_owner';
    for t in select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
              where n.nspname = 'muster_access' loop
        execute format('alter function %s owner to muster_owner', t);
    end loop;
end
$admin$;
