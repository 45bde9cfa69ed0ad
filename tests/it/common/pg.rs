//! PostgreSQL for tests: every call to [`database_url`] or [`require_database_url`] creates a fresh,
//! empty database and returns its URL.
//!
//! Where the server comes from:
//! - if `KMS_TEST_DATABASE_URL` is set (a `postgres://` URL or a key=value string naming a database the
//!   user may connect to, with the right to `CREATE DATABASE`), that server is used; the test databases
//!   made there (`trent_test_<uuid>`) are left behind for the caller to drop;
//! - otherwise one throwaway cluster is started per test process, on the first call: `initdb` and
//!   `pg_ctl` from `PATH` (or the newest `/usr/lib/postgresql/*/bin`), run through
//!   `runuser -u postgres --` when the tests run as root (initdb refuses root), in
//!   `$TMPDIR/trent-pg-test-<pid>`, listening on 127.0.0.1 on a free port, with `fsync=off`
//!   (tests need no durability across a power cut) unless `TRENT_TEST_PG_FSYNC=on` asks for a
//!   cluster that syncs its WAL as a deployment does (the throughput benchmark sets it, so its
//!   PostgreSQL figures include the commit's fsync, as SQLite's do).
//!
//! Stopping the throwaway cluster: statics are never dropped, so the harness starts a small detached
//! watchdog (`sh`, in its own process group) that polls the test process once a second and, once it
//! has exited, runs `pg_ctl stop -m immediate` and removes the directory. As a second line, each
//! harness start stops and removes any `trent-pg-test-<pid>` cluster whose process is gone.
//!
//! These functions block (initdb takes a few seconds; creating a database is a round trip on a
//! private runtime in its own thread). From async tests call them through
//! `tokio::task::spawn_blocking`, or before building a runtime.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Set to `on`, the throwaway cluster syncs its WAL (`fsync=on`), as a deployment does.
pub const FSYNC_ENV: &str = "TRENT_TEST_PG_FSYNC";

/// The environment variable naming an existing server to use instead of a throwaway cluster.
pub const URL_ENV: &str = "KMS_TEST_DATABASE_URL";

/// The prefix of the throwaway cluster directories in the temp dir.
const DIR_PREFIX: &str = "trent-pg-test-";

/// A fresh database's URL, or `None` when no PostgreSQL can be had (blocking).
pub fn database_url() -> Option<String> {
    try_database_url().ok()
}

/// A fresh database's URL; panics with the reason when no PostgreSQL can be had (blocking).
pub fn require_database_url() -> String {
    try_database_url().unwrap_or_else(|reason| {
        panic!(
            "no PostgreSQL for the tests: {reason}\n\
             Install PostgreSQL (initdb and pg_ctl on PATH or in /usr/lib/postgresql/*/bin) \
             or set {URL_ENV} to a server URL whose user may CREATE DATABASE."
        )
    })
}

/// A fresh database on the configured server or on this process's throwaway cluster.
fn try_database_url() -> Result<String, String> {
    let base = match std::env::var(URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => cluster()?.url(),
    };
    let name = format!("trent_test_{}", uuid::Uuid::new_v4().simple());
    create_database(&base, &name)?;
    Ok(with_database(&base, &name))
}

/// The throwaway cluster of this test process.
struct Cluster {
    port: u16,
}

impl Cluster {
    /// The URL of the cluster's default database.
    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The cluster, started on first use (concurrent callers wait for the one start).
fn cluster() -> Result<&'static Cluster, String> {
    CLUSTER
        .get_or_init(start_cluster)
        .as_ref()
        .map_err(Clone::clone)
}

/// Sweep stale clusters, then initdb, start and watch a new one.
fn start_cluster() -> Result<Cluster, String> {
    let root = running_as_root();
    let initdb = find_pg_binary("initdb")?;
    let pg_ctl = find_pg_binary("pg_ctl")?;
    sweep_stale_clusters(&pg_ctl, root);

    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if root {
        run(Command::new("chown").arg("-R").arg("postgres").arg(&dir))?;
    }
    let data = dir.join("data");
    run(as_postgres(&initdb, root)
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
        .arg("--locale=C"))?;

    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let fsync = if std::env::var(FSYNC_ENV).as_deref() == Ok("on") {
            "on"
        } else {
            "off"
        };
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync}",
            dir.display()
        );
        let started = run(as_postgres(&pg_ctl, root)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .arg("-o")
            .arg(options)
            .args(["-w", "-t", "60", "start"]));
        match started {
            Ok(_) => {
                spawn_watchdog(&pg_ctl, &dir, root)?;
                return Ok(Cluster { port });
            }
            Err(e) => {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                last_error = format!("{e}\nserver log:\n{log}");
            }
        }
    }
    Err(format!("pg_ctl start failed three times: {last_error}"))
}

/// Stop and remove clusters left by test processes that no longer exist (Linux only: needs /proc).
fn sweep_stale_clusters(pg_ctl: &Path, root: bool) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        let dir = entry.path();
        if dir.join("data").join("postmaster.pid").exists() {
            let _ = run(as_postgres(pg_ctl, root)
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-m", "immediate", "stop"]));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Start a detached shell that stops the cluster and removes `dir` once this process has exited.
fn spawn_watchdog(pg_ctl: &Path, dir: &Path, root: bool) -> Result<(), String> {
    let runner = if root { "runuser -u postgres -- " } else { "" };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {runner}{pg_ctl} -D {data} -m immediate stop; rm -rf {dir}",
        pid = std::process::id(),
        pg_ctl = quote(pg_ctl),
        data = quote(&dir.join("data")),
        dir = quote(dir),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start the cluster watchdog: {e}"))
}

/// `path` single-quoted for `sh`.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// A command that runs `program` as the postgres user when we are root.
fn as_postgres(program: &Path, root: bool) -> Command {
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Run a command to completion; its output in the error when it fails.
fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{shown} failed ({}): {text}", out.status))
    }
}

/// Whether this process runs as root (`id -u` is 0).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL program from PATH, else from the newest /usr/lib/postgresql/<version>/bin.
fn find_pg_binary(name: &str) -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(found) = on_path
        .iter()
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin").join(name)))
        })
        .filter(|(_, p)| p.is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, p)| p)
        .ok_or_else(|| format!("{name} is neither on PATH nor in /usr/lib/postgresql/*/bin"))
}

/// A TCP port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// `CREATE DATABASE name` on the server at `base`, on a private runtime in its own thread.
fn create_database(base: &str, name: &str) -> Result<(), String> {
    let base = base.to_string();
    let sql = format!("CREATE DATABASE {name}");
    std::thread::spawn(move || -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build a runtime: {e}"))?;
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("cannot connect to {}: {}", redact(&base), describe(&e)))?;
            let task = tokio::spawn(connection);
            let created = client
                .batch_execute(&sql)
                .await
                .map_err(|e| format!("{sql}: {}", describe(&e)));
            drop(client);
            let _ = task.await;
            created
        })
    })
    .join()
    .map_err(|_| "the database-creating thread panicked".to_string())?
}

/// The server's message for a tokio-postgres error (its Display only says "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut msg = e.to_string();
            if let Some(source) = std::error::Error::source(e) {
                msg.push_str(&format!(": {source}"));
            }
            msg
        }
    }
}

/// `base` with its password masked, for error messages.
fn redact(base: &str) -> String {
    match (base.find("://"), base.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &base[..scheme + 3],
                    &userinfo[..colon],
                    &base[at..]
                ),
                None => base.to_string(),
            }
        }
        _ if base.contains("password") => "(connection string with a password)".to_string(),
        _ => base.to_string(),
    }
}

/// `base` pointed at database `name` (URL form: the path is replaced; key=value form: appended).
fn with_database(base: &str, name: &str) -> String {
    let Some(scheme_end) = base.find("://") else {
        return format!("{base} dbname={name}");
    };
    let (head, query) = match base.find('?') {
        Some(q) => base.split_at(q),
        None => (base, ""),
    };
    let authority_end = head[scheme_end + 3..]
        .find('/')
        .map(|i| scheme_end + 3 + i)
        .unwrap_or(head.len());
    format!("{}/{name}{query}", &head[..authority_end])
}
