-- The root key(s) the keystore's sealed material is sealed under, recorded at first use: a key id
-- and a key-check value (both derived from the key by HMAC; neither reveals it). A process whose
-- root key does not match refuses to start instead of sealing new material under another key.
CREATE TABLE root_keys (
    id          TEXT PRIMARY KEY,
    check_value TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
