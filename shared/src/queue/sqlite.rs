//! The job queue, its dead-letter queue and the timers in one SQLite file:
//! local mode's embedded default, so that a job `serve` accepted (answered
//! PENDING) is still there after a restart, and a code's expiry check too.
//!
//! The queues keep SQS FIFO's semantics (the port's docs): the receive
//! rule is the one the in-memory queue uses ([`super::pick`]), run inside
//! a write transaction, so two processes on one file never hand out the
//! same message. A job holds its code until it is sent, as SQS holds it
//! (encrypted at rest there): the file zeroes what it deletes
//! (`secure_delete`), so a sent job's code does not stay in free pages, and
//! is readable by its owner only.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    FifoSettings, JobQueue, OutgoingMessage, Pick, QueueDepth, QueueError, ReceivedMessage, Slot,
    check_ids, local_arn, pick, poll,
};
use crate::clock::Clock;
use crate::crypto::random_hex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    grp TEXT NOT NULL,
    dedup TEXT,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    receipt TEXT,
    sent_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_in_order ON messages (queue, seq);
CREATE TABLE IF NOT EXISTS dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (queue, dedup_id)
);
CREATE TABLE IF NOT EXISTS timers (
    handle TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL
);
";

/// One open queue file, shared by its queues and timers.
#[derive(Debug, Clone)]
pub struct QueueFile {
    conn: Arc<Mutex<Connection>>,
}

impl QueueFile {
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        let named = |e: rusqlite::Error| QueueError::Rejected(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| QueueError::Rejected(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(named)?;
        restrict(path);
        conn.busy_timeout(crate::ledger::sqlite::BUSY_WAIT)
            .map_err(named)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(named)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(named)?;
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(named)?;
        conn.execute_batch(SCHEMA).map_err(named)?;
        Ok(QueueFile {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` as one write transaction: no other writer, in this process
    /// or another, runs until it ends.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let out = f(&tx)?;
        tx.commit().map_err(sql_error)?;
        Ok(out)
    }
}

/// The file holds codes while their jobs wait: its owner's only.
#[cfg(unix)]
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict(_path: &Path) {}

pub(crate) fn sql_error(e: rusqlite::Error) -> QueueError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            QueueError::Unavailable(format!("the local queue is busy: {e}"))
        }
        _ => QueueError::Rejected(format!("local queue: {e}")),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A FIFO queue in a [`QueueFile`].
#[derive(Debug)]
pub struct SqliteFifo {
    name: String,
    file: QueueFile,
    clock: Arc<dyn Clock>,
    settings: FifoSettings,
    /// The dead-letter queue's name, in the same file.
    dlq: Option<String>,
}

/// A stored message, as a receive reads it.
struct Row {
    seq: i64,
    id: String,
    body: String,
    group: String,
    dedup: Option<String>,
    visible_at: i64,
    receive_count: u32,
    receipt: Option<String>,
    sent_at: i64,
}

impl Row {
    fn slot(&self) -> Slot<'_> {
        Slot {
            group: &self.group,
            visible_at_ms: self.visible_at,
            in_flight_receipt: self.receipt.is_some(),
            receive_count: self.receive_count,
        }
    }
}

impl SqliteFifo {
    pub fn new(
        file: QueueFile,
        name: &str,
        clock: Arc<dyn Clock>,
        settings: FifoSettings,
        dlq: Option<&str>,
    ) -> Self {
        SqliteFifo {
            name: name.to_owned(),
            file,
            clock,
            settings,
            dlq: dlq.map(str::to_owned),
        }
    }

    fn rows(&self, tx: &rusqlite::Transaction<'_>) -> Result<Vec<Row>, QueueError> {
        let mut stmt = tx
            .prepare(
                "SELECT seq, id, body, grp, dedup, visible_at, receive_count, receipt, sent_at
                 FROM messages WHERE queue = ?1 ORDER BY seq",
            )
            .map_err(sql_error)?;
        let rows = stmt
            .query_map([&self.name], |r| {
                Ok(Row {
                    seq: r.get(0)?,
                    id: r.get(1)?,
                    body: r.get(2)?,
                    group: r.get(3)?,
                    dedup: r.get(4)?,
                    visible_at: r.get(5)?,
                    receive_count: r.get(6)?,
                    receipt: r.get(7)?,
                    sent_at: r.get(8)?,
                })
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    }

    fn try_receive(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        let now = self.clock.now_ms();
        self.file.write(|tx| {
            let rows = self.rows(tx)?;
            let slots: Vec<Slot<'_>> = rows.iter().map(Row::slot).collect();
            let picks = pick(&slots, now, max, &self.settings, self.dlq.is_some());
            let mut out = Vec::new();
            for p in picks {
                match p {
                    Pick::HandOut(i) => out.push(self.hand_out(tx, &rows[i], now)?),
                    Pick::Redrive(i) => self.redrive(tx, &rows[i], now)?,
                }
            }
            Ok(out)
        })
    }

    /// A new receipt, one more receive, hidden for the visibility timeout.
    fn hand_out(
        &self,
        tx: &rusqlite::Transaction<'_>,
        m: &Row,
        now: i64,
    ) -> Result<ReceivedMessage, QueueError> {
        let receipt = format!("{}-{}", self.name, random_hex(12));
        let count = m.receive_count + 1;
        tx.execute(
            "UPDATE messages SET receipt = ?1, receive_count = ?2, visible_at = ?3 WHERE seq = ?4",
            params![
                receipt,
                count,
                now.saturating_add(millis(self.settings.visibility)),
                m.seq
            ],
        )
        .map_err(sql_error)?;
        Ok(ReceivedMessage {
            message_id: m.id.clone(),
            receipt_handle: receipt,
            body: m.body.clone(),
            group_id: m.group.clone(),
            dedup_id: m.dedup.clone(),
            receive_count: count,
            sent_at_ms: m.sent_at,
        })
    }

    /// To the end of the dead-letter queue, as if new there.
    fn redrive(&self, tx: &rusqlite::Transaction<'_>, m: &Row, now: i64) -> Result<(), QueueError> {
        let Some(dlq) = &self.dlq else {
            return Ok(());
        };
        tx.execute("DELETE FROM messages WHERE seq = ?1", [m.seq])
            .map_err(sql_error)?;
        tx.execute(
            "INSERT INTO messages (queue, id, body, grp, dedup, visible_at, receive_count, receipt, sent_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, NULL, ?7)",
            params![dlq, m.id, m.body, m.group, m.dedup, now, m.sent_at],
        )
        .map_err(sql_error)?;
        tracing::warn!(queue = %self.name, message_id = %m.id, "message moved to the dead-letter queue");
        Ok(())
    }

    /// The in-flight message under `receipt` (its receipt is only good
    /// while it is in flight, as in SQS FIFO).
    fn in_flight(
        &self,
        tx: &rusqlite::Transaction<'_>,
        receipt: &str,
        now: i64,
    ) -> Result<i64, QueueError> {
        tx.query_row(
            "SELECT seq FROM messages WHERE queue = ?1 AND receipt = ?2 AND visible_at > ?3",
            params![self.name, receipt, now],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_error)?
        .ok_or(QueueError::InvalidReceipt)
    }
}

#[async_trait]
impl JobQueue for SqliteFifo {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        check_ids(&msg)?;
        let now = self.clock.now_ms();
        self.file.write(|tx| {
            tx.execute(
                "DELETE FROM dedup WHERE queue = ?1 AND at <= ?2",
                params![self.name, now - millis(self.settings.dedup_window)],
            )
            .map_err(sql_error)?;
            let earlier: Option<String> = tx
                .query_row(
                    "SELECT id FROM dedup WHERE queue = ?1 AND dedup_id = ?2",
                    params![self.name, msg.dedup_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_error)?;
            if let Some(id) = earlier {
                return Ok(id);
            }
            let id = format!("{}-{}", self.name, random_hex(8));
            tx.execute(
                "INSERT INTO dedup (queue, dedup_id, at, id) VALUES (?1, ?2, ?3, ?4)",
                params![self.name, msg.dedup_id, now, id],
            )
            .map_err(sql_error)?;
            tx.execute(
                "INSERT INTO messages (queue, id, body, grp, dedup, visible_at, receive_count, receipt, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, NULL, ?7)",
                params![
                    self.name,
                    id,
                    msg.body,
                    msg.group_id,
                    msg.dedup_id,
                    now + millis(self.settings.delay),
                    now
                ],
            )
            .map_err(sql_error)?;
            Ok(id)
        })
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        // Another process may send: poll the file, not a channel.
        poll(wait, Duration::from_millis(25), || self.try_receive(max)).await
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        self.file.write(|tx| {
            let seq = self.in_flight(tx, receipt_handle, now)?;
            tx.execute("DELETE FROM messages WHERE seq = ?1", [seq])
                .map_err(sql_error)?;
            Ok(())
        })
    }

    async fn set_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        self.file.write(|tx| {
            let seq = self.in_flight(tx, receipt_handle, now)?;
            // As in SQS, the receipt stays good while the message is in
            // flight, and is spent once it is visible again.
            let sql = if timeout.is_zero() {
                "UPDATE messages SET visible_at = ?1, receipt = NULL WHERE seq = ?2"
            } else {
                "UPDATE messages SET visible_at = ?1 WHERE seq = ?2"
            };
            tx.execute(sql, params![now.saturating_add(millis(timeout)), seq])
                .map_err(sql_error)?;
            Ok(())
        })
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let now = self.clock.now_ms();
        self.file.write(|tx| {
            let mut d = QueueDepth::default();
            for m in self.rows(tx)? {
                d.count(&m.slot(), now);
            }
            Ok(d)
        })
    }

    fn arn(&self) -> String {
        local_arn(&self.name)
    }
}
