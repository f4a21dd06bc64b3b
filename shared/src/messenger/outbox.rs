//! The outbox messenger: local mode's stand-in for the handset.
//!
//! Each accepted message becomes one JSON line in the outbox file:
//! `{"eventId","channel","to","body","voiceId","messageId","sentAt"}`. The
//! file is the only place the code is written: the console notice shows the
//! channel, the masked number and the message id, and the logs show less.
//! Message feedback goes to `feedback.jsonl` beside it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::crypto::random_hex;
use crate::domain::{Feedback, Route};
use crate::messenger::{Messenger, OutboundMessage, SendError, SendReceipt};

/// One outbox line.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OutboxLine {
    pub event_id: String,
    pub channel: String,
    pub to: String,
    pub body: String,
    pub voice_id: Option<String>,
    pub message_id: String,
    pub sent_at: String,
    /// The route it went by (`own`, `notify`); lines written before routes
    /// existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

impl std::fmt::Debug for OutboxLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxLine")
            .field("event_id", &self.event_id)
            .field("channel", &self.channel)
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

/// An outbox file opened for appending, one JSON line per message: local
/// mode's messenger and the End User Messaging stand-in both write it.
#[derive(Debug)]
pub struct OutboxFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl OutboxFile {
    /// Opens (creating it and its folder if needed) the file for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(OutboxFile {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line, in one write under the lock, so lines never
    /// interleave.
    pub fn append(&self, line: &OutboxLine) -> std::io::Result<()> {
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(text.as_bytes())?;
        file.flush()
    }
}

/// Where the one-line masked notice of each message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notices {
    Off,
    /// `serve`'s console.
    Stdout,
    /// `invoke`, whose stdout is the handler's JSON response alone, so it
    /// pipes to `jq`.
    Stderr,
}

/// Appends messages to a JSONL file and prints a masked notice of each.
/// With [`OutboxMessenger::with_receipts`] it also plays End User
/// Messaging's delivery events: one final event per message, in the
/// service's format, on a channel the caller feeds to the receipts flow.
#[derive(Debug)]
pub struct OutboxMessenger {
    file: OutboxFile,
    /// Feedback lines are appended one at a time.
    feedback: Mutex<()>,
    notices: Notices,
    route: Route,
    receipts: Option<(
        tokio::sync::mpsc::UnboundedSender<String>,
        super::receipts::Undeliverable,
    )>,
}

impl OutboxMessenger {
    /// Opens (creating if needed) the outbox for appending. `notices` says
    /// where the one line per message goes.
    pub fn open(path: &Path, notices: Notices) -> std::io::Result<Self> {
        Ok(OutboxMessenger {
            file: OutboxFile::open(path)?,
            feedback: Mutex::new(()),
            notices,
            route: Route::Own,
            receipts: None,
        })
    }

    /// Reports each message's final delivery event on `events`: delivered,
    /// unless `undeliverable` covers its destination.
    pub fn with_receipts(
        mut self,
        events: tokio::sync::mpsc::UnboundedSender<String>,
        undeliverable: super::receipts::Undeliverable,
    ) -> Self {
        self.receipts = Some((events, undeliverable));
        self
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Plays `route`: the lines name it, and as Notify it takes only the
    /// countries Notify's Basic tier serves (a route failure otherwise, as
    /// a new Notify configuration answers).
    pub fn for_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// Where message feedback goes: `feedback.jsonl` beside the outbox.
    pub fn feedback_path(&self) -> PathBuf {
        self.path().with_file_name("feedback.jsonl")
    }

    /// Reads every line of an outbox file.
    pub fn read(path: &Path) -> std::io::Result<Vec<OutboxLine>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }
}

#[async_trait]
impl Messenger for OutboxMessenger {
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        if self.route == Route::Notify {
            super::notify::basic_tier().admits(
                message.rendered.channel,
                message.to.region().map(|r| r.as_str()),
            )?;
        }
        let message_id = format!("local-{}", random_hex(12));
        let sent_ms = chrono::Utc::now().timestamp_millis();
        let line = OutboxLine {
            event_id: message.event_id.to_string(),
            channel: message.rendered.channel.as_str().to_owned(),
            to: message.to.e164().to_owned(),
            body: message.rendered.body.clone(),
            voice_id: message.rendered.voice_id.clone(),
            message_id: message_id.clone(),
            sent_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            route: Some(self.route.as_str().to_owned()),
        };
        self.file.append(&line).map_err(|_| SendError::Retryable {
            code: "OutboxWrite".into(),
        })?;
        let notice = || {
            format!(
                "outbox: {} to {} in {} by {} ({}, event {})",
                line.channel,
                message.to,
                message.rendered.locale,
                self.route,
                message_id,
                line.event_id
            )
        };
        // A closed pipe (`| head`) must not fail a send that is on disk.
        match self.notices {
            Notices::Off => {}
            Notices::Stdout => {
                let _ = writeln!(std::io::stdout().lock(), "{}", notice());
            }
            Notices::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "{}", notice());
            }
        }
        if let Some((events, undeliverable)) = &self.receipts {
            let reported_ms = chrono::Utc::now().timestamp_millis();
            // The receiver is gone only when local mode is shutting down.
            let _ = events.send(super::receipts::local_event(
                message,
                &message_id,
                sent_ms,
                reported_ms,
                undeliverable,
            ));
        }
        Ok(SendReceipt { message_id })
    }

    /// Appends `{"messageId","feedback","at"}` to `feedback.jsonl` beside
    /// the outbox: the provider's conversion record, in local mode.
    async fn feedback(&self, message_id: &str, status: Feedback) -> Result<(), SendError> {
        let line = serde_json::json!({
            "messageId": message_id,
            "feedback": status.as_str(),
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        let path = self.feedback_path();
        let _guard = self.feedback.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"))
            .map_err(|_| SendError::Retryable {
                code: "OutboxWrite".into(),
            })
    }
}
