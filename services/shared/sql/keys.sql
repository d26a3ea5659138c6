-- The key service: one data key per incident, sealing its people on the log (docs/security.md,
-- services/shared/sealing.py, services/shared/keys.py). Run by the administrator with roles.sql
-- (`muster db migrate`, the tests' database fixture), in every database, before the migrations;
-- safe to repeat. The keys live in schema muster_keys, owned by muster_keys, a role with no login
-- and no members (roles.sql); nobody reads its tables. The service is its SECURITY DEFINER
-- functions, each granted to the one role that needs it:
--
--   keys_for_sealing(uuid[], bytea[])   muster_intake   make (or find) the incidents' keys; none once erased
--   key_for_reading(uuid)               muster_query    the key, only when muster_access.people_of() lets the
--                                                       caller (its role, agency and stated reason) read people
--                                                       (granted to muster_keys by migration 0008)
--   erasure_of(uuid)                    muster_query    when (and why) an incident's key was erased, same rule
--   erase(uuid, text, text, text)       muster_owner    `muster people erase`, the retention schedule
--   held()                              muster_owner    the incidents whose keys are held (retention)
--
-- The projector holds no grant here: it stores sealed values only, and the rebuild never touches
-- this schema (the keys are not part of the status store).
do $keys$
begin
    execute 'create schema if not exists muster_keys authorization muster_keys';
    execute 'alter schema muster_keys owner to muster_keys';
    execute 'revoke all on schema muster_keys from public';

    execute $t$create table if not exists muster_keys.data_keys (
        incident_id uuid        primary key,
        data_key    bytea,                                          -- AES-256 key; null once erased
        created_at  timestamptz not null default clock_timestamp(),
        erased_at   timestamptz,
        check ((data_key is null) = (erased_at is not null)),
        check (data_key is null or length(data_key) = 32)
    )$t$;
    execute 'alter table muster_keys.data_keys owner to muster_keys';

    -- Who erased which incident's people, when, why and on what basis: append-only (no service holds
    -- muster_keys, so none can disable the trigger).
    execute $t$create table if not exists muster_keys.erasures (
        incident_id uuid        primary key,
        erased_at   timestamptz not null default clock_timestamp(),
        erased_by   text        not null check (btrim(erased_by) <> ''),
        db_user     text        not null default session_user,
        reason      text        not null check (btrim(reason) <> ''),
        basis       text        not null check (basis in ('request', 'retention'))
    )$t$;
    execute 'alter table muster_keys.erasures owner to muster_keys';
    execute $f$create or replace function muster_keys.append_only() returns trigger
        language plpgsql as $b$
        begin
            raise exception 'muster_keys.erasures is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
        end
        $b$$f$;
    execute 'drop trigger if exists erasures_no_change on muster_keys.erasures';
    execute 'drop trigger if exists erasures_no_truncate on muster_keys.erasures';
    execute 'create trigger erasures_no_change before update or delete on muster_keys.erasures
        for each row execute function muster_keys.append_only()';
    execute 'create trigger erasures_no_truncate before truncate on muster_keys.erasures
        for each statement execute function muster_keys.append_only()';

    -- Intake: the keys of these incidents, each made from its candidate if it has none. An erased
    -- incident's row keeps no key, and none is made again: its data_key comes back null.
    execute $f$create or replace function muster_keys.keys_for_sealing(incidents uuid[], candidates bytea[])
        returns table (incident_id uuid, data_key bytea)
        language sql volatile security definer set search_path = muster_keys, pg_temp as $b$
            insert into muster_keys.data_keys (incident_id, data_key)
            select t.i, t.k from unnest(incidents, candidates) as t(i, k)
            on conflict on constraint data_keys_pkey do nothing;
            select t.i, d.data_key from unnest(incidents) as t(i)
              join muster_keys.data_keys d on d.incident_id = t.i;
        $b$$f$;

    -- The query service: the key, when the status store's rules (people_of: the caller's role,
    -- agency and stated reason, the incident's owners and classification) let this caller read people.
    execute $f$create or replace function muster_keys.key_for_reading(incident uuid) returns bytea
        language plpgsql stable security definer set search_path = muster_keys, pg_temp as $b$
        begin
            if muster_access.people_of(incident) is null then
                return null;
            end if;
            return (select d.data_key from muster_keys.data_keys d where d.incident_id = incident);
        end
        $b$$f$;

    execute $f$create or replace function muster_keys.erasure_of(incident uuid)
        returns table (erased_at timestamptz, basis text)
        language plpgsql stable security definer set search_path = muster_keys, pg_temp as $b$
        begin
            if muster_access.people_of(incident) is null then
                return;
            end if;
            return query select e.erased_at, e.basis from muster_keys.erasures e where e.incident_id = incident;
        end
        $b$$f$;

    -- Erase an incident's key (and refuse it a new one), recorded once; returns the erasure's time
    -- and whether this call made it (false: erased before).
    execute $f$create or replace function muster_keys.erase(incident uuid, erased_by text, reason text, basis text)
        returns table (erased_at timestamptz, erased_now boolean)
        language plpgsql volatile security definer set search_path = muster_keys, pg_temp as $b$
        declare
            at timestamptz;
        begin
            select e.erased_at into at from muster_keys.erasures e where e.incident_id = incident;
            if found then
                return query select at, false;
                return;
            end if;
            insert into muster_keys.erasures (incident_id, erased_by, reason, basis)
                values (incident, erased_by, reason, basis) returning erasures.erased_at into at;
            insert into muster_keys.data_keys as d (incident_id, data_key, erased_at) values (incident, null, at)
                on conflict on constraint data_keys_pkey do update set data_key = null, erased_at = at;
            return query select at, true;
        end
        $b$$f$;

    execute $f$create or replace function muster_keys.held()
        returns table (incident_id uuid, created_at timestamptz)
        language sql stable security definer set search_path = muster_keys, pg_temp as $b$
            select d.incident_id, d.created_at from muster_keys.data_keys d where d.data_key is not null
        $b$$f$;

    execute 'alter function muster_keys.append_only() owner to muster_keys';
    execute 'alter function muster_keys.keys_for_sealing(uuid[], bytea[]) owner to muster_keys';
    execute 'alter function muster_keys.key_for_reading(uuid) owner to muster_keys';
    execute 'alter function muster_keys.erasure_of(uuid) owner to muster_keys';
    execute 'alter function muster_keys.erase(uuid, text, text, text) owner to muster_keys';
    execute 'alter function muster_keys.held() owner to muster_keys';
    execute 'revoke all on all functions in schema muster_keys from public';
    execute 'grant usage on schema muster_keys to muster_intake, muster_query, muster_owner';
    execute 'grant execute on function muster_keys.keys_for_sealing(uuid[], bytea[]) to muster_intake';
    execute 'grant execute on function muster_keys.key_for_reading(uuid), muster_keys.erasure_of(uuid) to muster_query';
    execute 'grant execute on function muster_keys.erase(uuid, text, text, text), muster_keys.held() to muster_owner';

end
$keys$;
