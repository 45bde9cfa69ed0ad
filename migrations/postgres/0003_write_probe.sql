-- One row that readiness checks rewrite after a failed commit, to learn whether the store takes
-- writes again (a full disk, a read-only database) without waiting for client traffic.
CREATE TABLE write_probe (
    id        INTEGER PRIMARY KEY,
    probed_at TIMESTAMPTZ NOT NULL
);
