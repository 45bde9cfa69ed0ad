-- The chain trigger of 0005 joins a statement's new records to their predecessors in
-- audit_records. PostgreSQL plans that join at each statement from the table's statistics, and
-- while they say the table is tiny (a young store, before or between auto-analyzes) it may
-- choose a hash join over a sequential scan of the whole table: a profile of a young store
-- under load showed the trigger reading every audit record on each batch. The check is meant
-- to read one row per new record by primary key, so the function now plans without sequential
-- scans: the join can only probe audit_records_pkey, whatever the statistics say. The guarantee
-- is unchanged.
ALTER FUNCTION trent_audit_extends_chain() SET enable_seqscan = off;
