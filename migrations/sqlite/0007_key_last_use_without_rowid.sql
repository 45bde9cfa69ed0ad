-- key_last_use becomes a WITHOUT ROWID table. As a rowid table with a TEXT primary key it was two
-- b-trees: the rows, by rowid, and SQLite's automatic unique index on key_arn. Each upsert of a
-- key's last use touched a page of each, and over many keys both pages are random: two of the
-- three random pages an Encrypt dirtied (the third is its ResourceName lookup row). Keyed by
-- key_arn itself, the row lives in its primary key's b-tree, one page per upsert.
CREATE TABLE key_last_use_v7 (
    key_arn    TEXT PRIMARY KEY NOT NULL,
    operation  TEXT NOT NULL,
    used_at    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    request_id TEXT NOT NULL
) WITHOUT ROWID;

-- A rowid table admits a NULL primary key; no write of Trent's makes one, and none can be kept.
INSERT INTO key_last_use_v7 (key_arn, operation, used_at, event_id, request_id)
    SELECT key_arn, operation, used_at, event_id, request_id FROM key_last_use
    WHERE key_arn IS NOT NULL;

DROP TABLE key_last_use;
ALTER TABLE key_last_use_v7 RENAME TO key_last_use;
