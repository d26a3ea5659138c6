-- The timeline is read per incident only (incident_events_timeline_idx serves it: the query
-- API's incident detail, the rebuild check, the reference fold). The two other secondary
-- indexes had no reader and cost every projected event two more random B-tree inserts:
-- with them gone the projector's timeline insert runs about twice as fast
-- (bench/projector.py). Add an index back together with the query that needs it.
drop index if exists incident_events_occurred_idx;
drop index if exists incident_events_type_idx;
