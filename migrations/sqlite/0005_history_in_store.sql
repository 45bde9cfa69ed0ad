-- History lives in the store: LookupEvents and GetKeyLastUsage answer from tables written in the
-- same transaction as each audit record, instead of from in-memory indexes rebuilt at start.
--
-- 1. audit_records loses its UNIQUE indexes on random values (event_id, prev_hash, hash): each
--    cost page reads and writes on every insert. What prev_hash UNIQUE guaranteed (the chain
--    cannot fork) a trigger now guarantees more strictly: a record must name, as prev_hash, the
--    hash of the record at the sequence just before it (the genesis hash for sequence 1), so
--    the chain can neither fork nor have a gap. It reads one row by primary key (the chain's
--    hot right edge). Event ids are looked up through audit_lookup.
CREATE TABLE audit_records_v5 (
    sequence   INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL,
    event_time TEXT NOT NULL,
    record     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
INSERT INTO audit_records_v5 (sequence, event_id, event_time, record, prev_hash, hash)
    SELECT sequence, event_id, event_time, record, prev_hash, hash FROM audit_records;
-- DROP TABLE's implicit delete runs no triggers; the old triggers and indexes go with the table.
DROP TABLE audit_records;
ALTER TABLE audit_records_v5 RENAME TO audit_records;

CREATE TRIGGER audit_records_refuse_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused');
END;

CREATE TRIGGER audit_records_refuse_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused');
END;

CREATE TRIGGER audit_records_extend_chain BEFORE INSERT ON audit_records
WHEN NEW.prev_hash IS NOT (
    CASE WHEN NEW.sequence = 1
         THEN '0000000000000000000000000000000000000000000000000000000000000000'
         ELSE (SELECT hash FROM audit_records WHERE sequence = NEW.sequence - 1)
    END)
BEGIN
    SELECT RAISE(ABORT, 'audit records must extend the chain: prev_hash is not the hash of the record before');
END;

-- 2. The LookupEvents index: one row per (record, attribute value), plus one row under the
--    attribute '*' per record for queries without an attribute. Newest first is a backwards scan.
CREATE TABLE audit_lookup (
    account    TEXT    NOT NULL,
    attribute  TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    event_time INTEGER NOT NULL, -- epoch seconds
    sequence   INTEGER NOT NULL,
    PRIMARY KEY (account, attribute, value, event_time, sequence)
) WITHOUT ROWID;

CREATE TRIGGER audit_lookup_refuse_update BEFORE UPDATE ON audit_lookup
BEGIN
    SELECT RAISE(ABORT, 'the audit lookup index is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_lookup_refuse_delete BEFORE DELETE ON audit_lookup
BEGIN
    SELECT RAISE(ABORT, 'the audit lookup index is append-only: DELETE refused');
END;

-- Index the records written before this migration, as the service indexes new ones
-- (service/src/lookup.rs `attributes`).
WITH r AS (
    SELECT sequence,
           CAST(strftime('%s', event_time) AS INTEGER) AS t,
           json_extract(record, '$.recipientAccountId') AS account,
           record
    FROM audit_records
    WHERE json_valid(record)
),
attrs (account, attribute, value, t, sequence) AS (
    SELECT account, '*', '', t, sequence FROM r
    UNION ALL SELECT account, 'EventId', json_extract(record, '$.eventID'), t, sequence FROM r
    UNION ALL SELECT account, 'EventName', json_extract(record, '$.eventName'), t, sequence FROM r
    UNION ALL SELECT account, 'ReadOnly',
                     CASE json_type(record, '$.readOnly') WHEN 'true' THEN 'true'
                                                          WHEN 'false' THEN 'false' END,
                     t, sequence FROM r
    UNION ALL SELECT account, 'Username',
                     CASE json_extract(record, '$.userIdentity.type')
                         WHEN 'Root' THEN 'root'
                         WHEN 'AssumedRole' THEN
                             CASE WHEN instr(json_extract(record, '$.userIdentity.arn'), '/') > 0
                                  THEN substr(json_extract(record, '$.userIdentity.arn'),
                                              length(rtrim(json_extract(record, '$.userIdentity.arn'),
                                                           replace(json_extract(record, '$.userIdentity.arn'), '/', ''))) + 1)
                             END
                         ELSE json_extract(record, '$.userIdentity.userName')
                     END,
                     t, sequence FROM r
    UNION ALL SELECT account, 'EventSource', json_extract(record, '$.eventSource'), t, sequence FROM r
    UNION ALL SELECT account, 'AccessKeyId', json_extract(record, '$.userIdentity.accessKeyId'), t, sequence FROM r
    UNION ALL SELECT account, 'ResourceType', json_extract(res.value, '$.type'), t, sequence
              FROM r, json_each(r.record, '$.resources') AS res
    UNION ALL SELECT account, 'ResourceName', json_extract(res.value, '$.ARN'), t, sequence
              FROM r, json_each(r.record, '$.resources') AS res
)
INSERT OR IGNORE INTO audit_lookup (account, attribute, value, event_time, sequence)
    SELECT account, attribute, value, t, sequence FROM attrs
    WHERE account IS NOT NULL AND value IS NOT NULL AND t IS NOT NULL
      AND typeof(account) = 'text' AND typeof(value) = 'text';

-- 3. The last successful cryptographic use of each key (GetKeyLastUsage), upserted in the
--    commit of the call that used it.
CREATE TABLE key_last_use (
    key_arn    TEXT PRIMARY KEY,
    operation  TEXT NOT NULL,
    used_at    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    request_id TEXT NOT NULL
);

INSERT INTO key_last_use (key_arn, operation, used_at, event_id, request_id)
    SELECT arn, operation, event_time, event_id, request_id FROM (
        SELECT json_extract(res.value, '$.ARN') AS arn,
               json_extract(a.record, '$.eventName') AS operation,
               a.event_time,
               COALESCE(json_extract(a.record, '$.eventID'), '') AS event_id,
               COALESCE(json_extract(a.record, '$.requestID'), '') AS request_id,
               ROW_NUMBER() OVER (PARTITION BY json_extract(res.value, '$.ARN')
                                  ORDER BY a.event_time DESC, a.sequence ASC) AS n
        FROM audit_records a, json_each(a.record, '$.resources') AS res
        WHERE json_valid(a.record)
          AND json_type(a.record, '$.errorCode') IS NULL
          AND json_extract(a.record, '$.eventType') = 'AwsApiCall'
          AND json_extract(a.record, '$.eventName') IN (
              'Decrypt', 'DeriveSharedSecret', 'Encrypt', 'GenerateDataKey',
              'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
              'GenerateDataKeyWithoutPlaintext', 'GenerateMac', 'ReEncrypt', 'Sign', 'Verify',
              'VerifyMac', 'Encapsulate', 'Decapsulate')
          AND json_extract(res.value, '$.ARN') IS NOT NULL
    ) WHERE n = 1;
