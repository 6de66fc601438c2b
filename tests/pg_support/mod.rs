//! A real PostgreSQL server for the tests: one private cluster on loopback
//! (`scripts/postgres.sh`), one fresh database per test.
//!
//! `HERALD_TEST_PG` names a server to use (a `postgres://` URL with a user
//! allowed to create databases). When it is unset, the first test to ask
//! starts the private cluster through `scripts/postgres.sh start`, which
//! installs Debian's `postgresql` package if it is missing. A test that
//! cannot reach a server fails: it never passes by skipping.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("HERALD_TEST_PG") {
            if !url.is_empty() {
                return url;
            }
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg("start")
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(out.status.success(), "{script} start failed; see its output above");
        let url = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_string();
        assert!(url.starts_with("postgres://"), "{script} printed no URL");
        url
    })
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a postgres URL has a database part");
    // Keep query parameters (`?sslmode=...`) if the server URL has any.
    let query = url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{base}/{db}{query}")
}

/// A client on the server's maintenance database.
pub fn admin() -> postgres::Client {
    postgres::Client::connect(server(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {}: {e}", server()))
}

/// A database of its own for one test, dropped (with its connections) when
/// the value goes out of scope.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new(tag: &str) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(30).collect();
        let name =
            format!("herald_t_{}_{}_{}", tag.to_lowercase(), std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let mut admin = admin();
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let url = with_database(server(), &name);
        TestDb { name, url }
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }

    /// Creates authentik's tables from the recorded DDL
    /// (`../shared/reference/authentik-postgres.sql` is authentik's; the
    /// project's own copy is `docs/authentik/authentik-tables.sql` once it
    /// exists). `layout` selects an older layout (`2025.8`, ...).
    pub fn run_sql_file(&self, path: &std::path::Path, layout: Option<&str>) {
        let sql = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut c = self.client();
        if let Some(l) = layout {
            c.batch_execute(&format!("SET herald.authentik_layout = '{l}'")).unwrap();
        }
        c.batch_execute(&sql).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var_os("HERALD_TEST_PG_KEEP").is_some() {
            eprintln!("kept database {}", self.url);
            return;
        }
        if let Ok(mut admin) = postgres::Client::connect(server(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name));
        }
    }
}
