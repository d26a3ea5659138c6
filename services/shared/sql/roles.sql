-- One PostgreSQL role per service (docs/security.md). Run by `muster db migrate` (and the
-- tests' database fixture) as the database's administrator before the migrations; safe to
-- repeat. Roles are cluster-wide; the schemas and database grants are per database.
--
--   muster_owner      owns the status store's tables and functions; migrations run as it (or as
--                     the administrator, who hands the objects to it). No service holds it.
--   muster_audit      owns access_audit, so nobody who can write the audit can disable its
--                     append-only trigger or rewrite it. No login, no members.
--   muster_projector  writes the status store (SELECT, INSERT, UPDATE, DELETE), owns nothing;
--                     BYPASSRLS: it writes every row, and COPY refuses a role under row-level security.
--   muster_query      reads under row-level security, INSERT on the audit only (migration 0002).
--   muster_intake     its own schema `intake` only.
--   muster_keys       owns the people's data keys (schema muster_keys); no login: the key
--                     service is its SECURITY DEFINER functions, callable by the roles cleared.
-- Local PostgreSQL trusts loopback (no passwords); production sets one password per login role
-- and gives each service only its own URL (deploy/k8s/secret.example.yaml).
do $$
declare
    r record;
begin
    for r in select * from (values
        ('muster_owner', true), ('muster_audit', false), ('muster_projector', true),
        ('muster_query', true), ('muster_intake', true), ('muster_keys', false)) as t(name, login)
    loop
        begin
            execute format('create role %I %s', r.name, case when r.login then 'login' else 'nologin' end);
        exception when duplicate_object or unique_violation then
            null;  -- made by another database's migration, or a concurrent one
        end;
    end loop;
end
$$;

alter role muster_projector bypassrls;

do $$
begin
    execute format('grant create, connect on database %I to muster_owner', current_database());
end
$$;
grant usage, create on schema public to muster_owner;

create schema if not exists intake authorization muster_intake;
alter schema intake owner to muster_intake;
