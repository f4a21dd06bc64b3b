//! The ledger in one SQLite file: local mode's embedded default, so that a
//! restarted `telehook serve` still knows which events it sent, and
//! `telehook guard` and `telehook report` (other processes) read and
//! change the same ledger while it runs.
//!
//! The shared table rules ([`super::tables`]) run inside SQLite
//! transactions: a write takes the database's write lock first (`BEGIN
//! IMMEDIATE`), so the check and the change of a conditional write cannot
//! interleave with another process's. The file is in WAL mode, so readers
//! do not wait for the writer; a writer waits up to [`BUSY_WAIT`] for
//! another and then reports the ledger unavailable (retryable), as a
//! throttled DynamoDB would.
//!
//! Records are JSON beside the columns the `byUser` index needs; items
//! carry their TTL, and what has expired is dropped when the file is
//! opened (DynamoDB's TTL deletes late too; no rule depends on it). Calls
//! run on the caller's thread: each is one short local transaction.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::tables::{Item, Store, TableLedger, Tables};
use super::{LedgerError, LedgerRecord};

/// The ledger in a SQLite file.
pub type SqliteLedger = TableLedger<SqliteTables>;

/// How long a writer waits for another process's transaction.
pub const BUSY_WAIT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    event_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    user_channel TEXT,
    sent_ms INTEGER,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS by_user ON records (user_channel, sent_ms)
    WHERE user_channel IS NOT NULL;
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
";

impl SqliteLedger {
    /// Opens (or creates) the ledger at `path`, dropping what expired
    /// before `now_s`.
    pub fn open(path: &Path, now_s: i64) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LedgerError::Rejected(format!("{}: {e}", dir.display())))?;
        }
        let named = |e: rusqlite::Error| LedgerError::Rejected(format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(named)?;
        conn.busy_timeout(BUSY_WAIT).map_err(named)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(named)?;
        // WAL's own guarantee: a committed transaction survives a crash of
        // the process; `NORMAL` leaves only a power loss to chance.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(named)?;
        conn.execute_batch(SCHEMA).map_err(named)?;
        conn.execute("DELETE FROM items WHERE expires_at < ?1", [now_s])
            .map_err(named)?;
        conn.execute("DELETE FROM records WHERE expires_at < ?1", [now_s])
            .map_err(named)?;
        Ok(TableLedger::on(SqliteTables {
            conn: Mutex::new(conn),
        }))
    }
}

/// The connection; one transaction at a time in this process, and
/// SQLite's lock between processes.
#[derive(Debug)]
pub struct SqliteTables {
    conn: Mutex<Connection>,
}

impl SqliteTables {
    fn run<T>(
        &self,
        behavior: TransactionBehavior,
        f: impl FnOnce(&mut dyn Tables) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(sql_error)?;
        let out = f(&mut Tx { tx: &tx })?;
        tx.commit().map_err(sql_error)?;
        Ok(out)
    }
}

impl Store for SqliteTables {
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Tables) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.run(TransactionBehavior::Deferred, f)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Tables) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.run(TransactionBehavior::Immediate, f)
    }
}

struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl Tables for Tx<'_> {
    fn record(&mut self, event_id: &str) -> Result<Option<LedgerRecord>, LedgerError> {
        let body: Option<String> = self
            .tx
            .query_row(
                "SELECT body FROM records WHERE event_id = ?1",
                [event_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql_error)?;
        body.map(|b| decode(&b)).transpose()
    }

    fn put_record(&mut self, record: LedgerRecord) -> Result<(), LedgerError> {
        let sent = record.sent.as_ref();
        self.tx
            .execute(
                "INSERT OR REPLACE INTO records (event_id, body, user_channel, sent_ms, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    record.event_id,
                    encode(&record)?,
                    sent.and_then(|s| s.user_channel.as_deref()),
                    sent.map(|s| s.sent_ms),
                    record.expires_at,
                ],
            )
            .map_err(sql_error)?;
        Ok(())
    }

    fn latest_send(
        &mut self,
        keys: &[String],
        at_ms: i64,
    ) -> Result<Option<LedgerRecord>, LedgerError> {
        let mut latest: Option<(i64, String)> = None;
        for key in keys {
            let found: Option<(i64, String)> = self
                .tx
                .query_row(
                    "SELECT sent_ms, body FROM records
                     WHERE user_channel = ?1 AND sent_ms <= ?2
                     ORDER BY sent_ms DESC LIMIT 1",
                    params![key, at_ms],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(sql_error)?;
            if let Some(f) = found
                && latest.as_ref().is_none_or(|l| f.0 > l.0)
            {
                latest = Some(f);
            }
        }
        latest.map(|(_, body)| decode(&body)).transpose()
    }

    fn records(&mut self) -> Result<Vec<LedgerRecord>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare("SELECT body FROM records ORDER BY event_id")
            .map_err(sql_error)?;
        let bodies = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(sql_error)?;
        bodies
            .map(|b| decode(&b.map_err(sql_error)?))
            .collect::<Result<_, _>>()
    }

    fn item(&mut self, key: &str) -> Result<Option<Item>, LedgerError> {
        let body: Option<String> = self
            .tx
            .query_row("SELECT body FROM items WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(sql_error)?;
        body.map(|b| decode(&b)).transpose()
    }

    fn put_item(&mut self, key: &str, item: Item, expires_at: i64) -> Result<(), LedgerError> {
        self.tx
            .execute(
                "INSERT OR REPLACE INTO items (key, body, expires_at) VALUES (?1, ?2, ?3)",
                params![key, encode(&item)?, expires_at],
            )
            .map_err(sql_error)?;
        Ok(())
    }

    fn items_under(&mut self, prefix: &str) -> Result<Vec<(String, Item)>, LedgerError> {
        // A range rather than LIKE: keys hold `#` and `_`, and the range
        // uses the primary key's order.
        let end = format!("{prefix}\u{10FFFF}");
        let mut stmt = self
            .tx
            .prepare("SELECT key, body FROM items WHERE key >= ?1 AND key < ?2 ORDER BY key")
            .map_err(sql_error)?;
        let rows = stmt
            .query_map([prefix, end.as_str()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(sql_error)?;
        rows.map(|r| {
            let (k, b) = r.map_err(sql_error)?;
            Ok((k, decode(&b)?))
        })
        .collect()
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, LedgerError> {
    serde_json::to_string(value).map_err(|e| LedgerError::Rejected(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, LedgerError> {
    serde_json::from_str(body)
        .map_err(|e| LedgerError::Rejected(format!("an unreadable ledger entry: {e}")))
}

/// Another process holding the lock past [`BUSY_WAIT`] is worth retrying;
/// anything else (a full disk, a damaged file) is not.
fn sql_error(e: rusqlite::Error) -> LedgerError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            LedgerError::Unavailable(format!("the local ledger is busy: {e}"))
        }
        _ => LedgerError::Rejected(format!("local ledger: {e}")),
    }
}
