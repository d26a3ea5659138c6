-- People sealed (docs/security.md). Intake publishes a fact's people sealed, in `people_sealed`
-- (`people` stays empty); the projector stores them so and never holds a key.
--
-- The timeline payload the query role reads leaves the sealed people out too (the whole payload
-- stays behind muster_access.payloads_of(), for the cleared).
alter table incident_events drop column if exists payload_open;
alter table incident_events add column payload_open jsonb
    generated always as (payload - 'people' - 'people_sealed' - 'complainant_key') stored;
grant select (payload_open) on incident_events to muster_query;

-- The key service (services/shared/sql/keys.sql, made with the roles) asks the status store's
-- rules before it releases a key: muster_keys.key_for_reading() and erasure_of() call
-- muster_access.people_of() (the caller's role, agency and stated reason; the incident's owners
-- and classification). Run by the administrator (as 0004); idempotent (the rebuild applies it again).
do $admin$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        execute 'grant usage on schema muster_access to muster_keys';
        execute 'grant execute on function muster_access.people_of(uuid) to muster_keys';
    end if;
end
$admin$;
