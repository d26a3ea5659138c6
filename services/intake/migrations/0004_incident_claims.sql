-- A report claims its incident before it is published, in the statement that claims its event_id:
-- a row here with `claimed_by` (the intake process) and `reported_event_id` (the report's event)
-- set, and the record's fields still empty. The primary key decides between two reports of the
-- same incident (in this process or another): the second claim inserts nothing, and that report
-- is refused. The report's record settles the claim (`claimed_by` null, the fields filled: the
-- registry row); a refused report gives it up (the row is deleted with its event_id claim).
-- Registry look-ups read settled rows only. Runs with search_path = intake (services/shared/migrations.py).
alter table incidents add column claimed_by uuid;
alter table incidents
    alter column reporter drop not null,
    alter column reporting_agency drop not null,
    alter column source_kind drop not null,
    alter column source_id drop not null,
    alter column mode drop not null,
    alter column classification drop not null;
alter table incidents add constraint incidents_settled_or_claimed check (
    claimed_by is not null or (reporter is not null and reporting_agency is not null and source_kind is not null
                               and source_id is not null and mode is not null and classification is not null));
