-- History lives in the store: LookupEvents and GetKeyLastUsage answer from tables written in the
-- same transaction as each audit record, instead of from in-memory indexes rebuilt at start.
--
-- 1. audit_records loses its UNIQUE indexes on random values (event_id, prev_hash, hash): each
--    cost page reads and writes on every insert. What prev_hash UNIQUE guaranteed (the chain
--    cannot fork) a statement-level trigger now guarantees more strictly: every inserted record
--    must name, as prev_hash, the hash of the record at the sequence just before it (the genesis
--    hash for sequence 1), so the chain can neither fork nor have a gap. It checks the whole
--    statement's rows at once, whatever order a multi-row insert took.
ALTER TABLE audit_records DROP CONSTRAINT audit_records_event_id_key;
ALTER TABLE audit_records DROP CONSTRAINT audit_records_prev_hash_key;
ALTER TABLE audit_records DROP CONSTRAINT audit_records_hash_key;
DROP INDEX audit_records_event_time;

CREATE FUNCTION trent_audit_extends_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_records n
        LEFT JOIN audit_records p ON p.sequence = n.sequence - 1
        WHERE n.prev_hash IS DISTINCT FROM
              CASE WHEN n.sequence = 1
                   THEN '0000000000000000000000000000000000000000000000000000000000000000'
                   ELSE p.hash END
    ) THEN
        RAISE EXCEPTION 'audit records must extend the chain: prev_hash is not the hash of the record before';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER audit_records_extend_chain
    AFTER INSERT ON audit_records
    REFERENCING NEW TABLE AS new_records
    FOR EACH STATEMENT EXECUTE FUNCTION trent_audit_extends_chain();

-- 2. The LookupEvents index: one row per (record, attribute value), plus one row under the
--    attribute '*' per record for queries without an attribute. Newest first is a backwards scan.
CREATE TABLE audit_lookup (
    account    TEXT   NOT NULL,
    attribute  TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    event_time BIGINT NOT NULL, -- epoch seconds
    sequence   BIGINT NOT NULL,
    PRIMARY KEY (account, attribute, value, event_time, sequence)
);

CREATE TRIGGER audit_lookup_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_lookup
    FOR EACH STATEMENT EXECUTE FUNCTION trent_refuse_change('audit lookup rows');

-- Index the records written before this migration, as the service indexes new ones
-- (service/src/lookup.rs `attributes`).
WITH r AS (
    SELECT sequence,
           floor(extract(epoch FROM event_time))::bigint AS t,
           record::jsonb AS j
    FROM audit_records
),
attrs (account, attribute, value, t, sequence) AS (
    SELECT j->>'recipientAccountId', '*', '', t, sequence FROM r
    UNION ALL SELECT j->>'recipientAccountId', 'EventId', j->>'eventID', t, sequence FROM r
    UNION ALL SELECT j->>'recipientAccountId', 'EventName', j->>'eventName', t, sequence FROM r
    UNION ALL SELECT j->>'recipientAccountId', 'ReadOnly',
                     CASE WHEN jsonb_typeof(j->'readOnly') = 'boolean' THEN j->>'readOnly' END,
                     t, sequence FROM r
    UNION ALL SELECT j->>'recipientAccountId', 'Username',
                     CASE j#>>'{userIdentity,type}'
                         WHEN 'Root' THEN 'root'
                         WHEN 'AssumedRole' THEN
                             CASE WHEN strpos(j#>>'{userIdentity,arn}', '/') > 0
                                  THEN regexp_replace(j#>>'{userIdentity,arn}', '^.*/', '')
                             END
                         ELSE j#>>'{userIdentity,userName}'
                     END,
                     t, sequence FROM r
    UNION ALL SELECT j->>'recipientAccountId', 'EventSource', j->>'eventSource', t, sequence FROM r
    UNION ALL SELECT j->>'recipientAccountId', 'AccessKeyId', j#>>'{userIdentity,accessKeyId}', t, sequence FROM r
    UNION ALL SELECT j->>'recipientAccountId', 'ResourceType', res->>'type', t, sequence
              FROM r, jsonb_array_elements(CASE WHEN jsonb_typeof(j->'resources') = 'array'
                                                THEN j->'resources' ELSE '[]'::jsonb END) AS res
    UNION ALL SELECT j->>'recipientAccountId', 'ResourceName', res->>'ARN', t, sequence
              FROM r, jsonb_array_elements(CASE WHEN jsonb_typeof(j->'resources') = 'array'
                                                THEN j->'resources' ELSE '[]'::jsonb END) AS res
)
INSERT INTO audit_lookup (account, attribute, value, event_time, sequence)
    SELECT DISTINCT account, attribute, value, t, sequence FROM attrs
    WHERE account IS NOT NULL AND value IS NOT NULL
ON CONFLICT DO NOTHING;

-- 3. The last successful cryptographic use of each key (GetKeyLastUsage), upserted in the
--    commit of the call that used it.
CREATE TABLE key_last_use (
    key_arn    TEXT        PRIMARY KEY,
    operation  TEXT        NOT NULL,
    used_at    TIMESTAMPTZ NOT NULL,
    event_id   TEXT        NOT NULL,
    request_id TEXT        NOT NULL
);

INSERT INTO key_last_use (key_arn, operation, used_at, event_id, request_id)
    SELECT arn, operation, event_time, event_id, request_id FROM (
        SELECT res->>'ARN' AS arn,
               j->>'eventName' AS operation,
               a.event_time,
               COALESCE(j->>'eventID', '') AS event_id,
               COALESCE(j->>'requestID', '') AS request_id,
               ROW_NUMBER() OVER (PARTITION BY res->>'ARN'
                                  ORDER BY a.event_time DESC, a.sequence ASC) AS n
        FROM (SELECT sequence, event_time, record::jsonb AS j FROM audit_records) a,
             jsonb_array_elements(CASE WHEN jsonb_typeof(j->'resources') = 'array'
                                       THEN j->'resources' ELSE '[]'::jsonb END) AS res
        WHERE NOT (j ? 'errorCode')
          AND j->>'eventType' = 'AwsApiCall'
          AND j->>'eventName' IN (
              'Decrypt', 'DeriveSharedSecret', 'Encrypt', 'GenerateDataKey',
              'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
              'GenerateDataKeyWithoutPlaintext', 'GenerateMac', 'ReEncrypt', 'Sign', 'Verify',
              'VerifyMac', 'Encapsulate', 'Decapsulate')
          AND res->>'ARN' IS NOT NULL
    ) latest WHERE n = 1;
