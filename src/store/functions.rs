//! SQL functions the filter compiler uses where SQLite's own differ from
//! the language: SQLite's `length` stops at the first NUL of a text value
//! and its `lower`/`upper`/`trim` know only ASCII. These apply the
//! interpreter's functions (`interp::ops`, Rust's `str`) to the full text.
//!
//! Each takes one value and returns NULL for anything but text (the
//! compiler only passes string columns and JSON strings).

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::Connection;

fn text_fn(conn: &Connection, name: &str, f: fn(&str) -> Sql) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function(name, 1, flags, move |ctx: &mut Context<'_>| {
        Ok(match ctx.get_raw(0) {
            // Text from SQLite is UTF-8 (the store only writes UTF-8);
            // anything else is not a string of the language.
            ValueRef::Text(b) => match std::str::from_utf8(b) {
                Ok(s) => f(s),
                Err(_) => Sql::Null,
            },
            _ => Sql::Null,
        })
    })
}

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    // `ops::len` on a string: characters, NULs included.
    text_fn(conn, "herald_len", |s| Sql::Integer(s.chars().count() as i64))?;
    text_fn(conn, "herald_lower", |s| Sql::Text(s.to_lowercase()))?;
    text_fn(conn, "herald_upper", |s| Sql::Text(s.to_uppercase()))?;
    text_fn(conn, "herald_trim", |s| Sql::Text(s.trim().to_string()))?;
    Ok(())
}
