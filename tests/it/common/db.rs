//! Raw SQL against a test server's database, independent of the server's own code.

use super::TestServer;

/// Raw SQL against the server's database, independent of the server's code.
pub enum Db {
    /// The embedded store's file.
    Sqlite(rusqlite::Connection),
    /// The PostgreSQL database.
    Postgres(tokio_postgres::Client),
}

impl Db {
    pub async fn open(server: &TestServer) -> Db {
        match &server.database_url {
            None => {
                Db::Sqlite(rusqlite::Connection::open(server.data_dir.join("trent.db")).unwrap())
            }
            Some(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                Db::Postgres(client)
            }
        }
    }

    /// Execute a statement; Err carries the database's message.
    pub async fn execute(&self, sql: &str) -> Result<u64, String> {
        match self {
            Db::Sqlite(c) => c
                .execute(sql, [])
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Db::Postgres(c) => c.execute(sql, &[]).await.map_err(|e| format!("{e:?}")),
        }
    }

    pub async fn audit_sequence_of(&self, request_id: &str) -> Option<i64> {
        let pattern = format!("%\"requestID\":\"{request_id}\"%");
        match self {
            Db::Sqlite(c) => c
                .query_row(
                    "SELECT sequence FROM audit_records WHERE record LIKE ?1",
                    [&pattern],
                    |r| r.get(0),
                )
                .ok(),
            Db::Postgres(c) => c
                .query_opt(
                    "SELECT sequence FROM audit_records WHERE record LIKE $1",
                    &[&pattern],
                )
                .await
                .unwrap()
                .map(|r| r.get(0)),
        }
    }

    /// What a database administrator would do to rewrite history: switch the guard off.
    pub async fn disable_audit_guard(&self) {
        match self {
            Db::Sqlite(c) => {
                let names: Vec<String> = c
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_records'")
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .map(|r| r.unwrap())
                    .collect();
                assert!(!names.is_empty(), "the audit table has no guard triggers");
                for n in names {
                    c.execute(&format!("DROP TRIGGER \"{n}\""), []).unwrap();
                }
            }
            Db::Postgres(c) => {
                c.execute("ALTER TABLE audit_records DISABLE TRIGGER USER", &[])
                    .await
                    .unwrap();
            }
        }
    }
    /// One integer from a query (e.g. a count).
    pub async fn query_i64(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).expect("query"),
            Db::Postgres(c) => c.query_one(sql, &[]).await.expect("query").get(0),
        }
    }

    /// How many sealed material rows a key has in the keystore table.
    pub async fn material_rows(&self, key_id: &str) -> i64 {
        self.query_i64(&format!(
            "SELECT COUNT(*) FROM key_materials WHERE key_id = '{key_id}'"
        ))
        .await
    }

    /// Every audit record, parsed, in chain order.
    pub async fn audit_records(&self) -> Vec<serde_json::Value> {
        let texts: Vec<String> = match self {
            Db::Sqlite(c) => c
                .prepare("SELECT record FROM audit_records ORDER BY sequence")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect(),
            Db::Postgres(c) => c
                .query("SELECT record FROM audit_records ORDER BY sequence", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
        };
        texts
            .iter()
            .map(|t| serde_json::from_str(t).expect("record is JSON"))
            .collect()
    }
}
