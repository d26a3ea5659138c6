-- People (restricted fields) only for the operational roles (control room, responder,
-- safeguarding, admin) of an agency that owns the incident, and only with a stated reason,
-- whatever the incident's classification (services/shared/access.py; the query service audits
-- every response that carries them).
create or replace function muster_access.may_see_people(source_agency text, agencies_required text[]) returns boolean
language sql stable as $$
    select muster_access.authenticated()
       and coalesce(current_setting('muster.role', true), '') in ('control_room', 'responder', 'safeguarding', 'admin')
       and muster_access.owns(source_agency, agencies_required)
       and coalesce(btrim(current_setting('muster.reason', true)), '') <> ''
$$;
