//! Timers in local mode's queue file ([`crate::queue::sqlite::QueueFile`]),
//! with the in-memory timers' semantics: a check arrives after its delay
//! (capped at [`super::MAX_DELAY`]), is hidden for a visibility timeout
//! once received, and comes back unless done; and it outlives a restart.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;

use super::{Arrived, Check, Timers, delay_for};
use crate::clock::Clock;
use crate::crypto::random_hex;
use crate::queue::QueueError;
use crate::queue::sqlite::{QueueFile, sql_error};

#[derive(Debug)]
pub struct SqliteTimers {
    file: QueueFile,
    clock: Arc<dyn Clock>,
    visibility: Duration,
}

impl SqliteTimers {
    pub fn new(file: QueueFile, clock: Arc<dyn Clock>) -> Self {
        SqliteTimers {
            file,
            clock,
            visibility: Duration::from_secs(30),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Timers for SqliteTimers {
    async fn schedule(&self, check: &Check, now_ms: i64) -> Result<(), QueueError> {
        let visible_at = now_ms + millis(delay_for(check.due_ms(), now_ms));
        self.file.write(|tx| {
            tx.execute(
                "INSERT INTO timers (handle, body, visible_at) VALUES (?1, ?2, ?3)",
                params![random_hex(8), check.encode(), visible_at],
            )
            .map_err(sql_error)?;
            Ok(())
        })
    }

    async fn arrived(&self, max: usize) -> Result<Vec<Arrived>, QueueError> {
        let now = self.clock.now_ms();
        self.file.write(|tx| {
            let due: Vec<(String, String)> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT handle, body FROM timers WHERE visible_at <= ?1
                         ORDER BY visible_at LIMIT ?2",
                    )
                    .map_err(sql_error)?;
                let rows = stmt
                    .query_map(params![now, i64::try_from(max).unwrap_or(10)], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(sql_error)?;
                rows.collect::<Result<_, _>>().map_err(sql_error)?
            };
            let mut out = Vec::new();
            for (old, body) in due {
                // A new handle per receive, as SQS gives.
                let handle = random_hex(8);
                tx.execute(
                    "UPDATE timers SET handle = ?1, visible_at = ?2 WHERE handle = ?3",
                    params![handle, now + millis(self.visibility), old],
                )
                .map_err(sql_error)?;
                out.push(Arrived { handle, body });
            }
            Ok(out)
        })
    }

    async fn done(&self, handle: &str) -> Result<(), QueueError> {
        self.file.write(|tx| {
            let n = tx
                .execute("DELETE FROM timers WHERE handle = ?1", [handle])
                .map_err(sql_error)?;
            if n == 0 {
                return Err(QueueError::InvalidReceipt);
            }
            Ok(())
        })
    }
}
