//! The delivery job: what the ingress puts on the FIFO queue and the
//! dispatcher (or the DLQ replayer) takes off it.
//!
//! The job must carry the OTP and the destination, because the dispatcher
//! has to send them; the queue is encrypted at rest and the message lives no
//! longer than the OTP. Nothing else stores them. `Debug` redacts both.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::channel::Channel;
use crate::domain::locale::Locale;
use crate::domain::otp::Otp;
use crate::domain::phone::{PhoneNumber, Region};
use crate::domain::{DeliveryRequest, EventId, OktaText, ReadNotes, RequestType, SignInContext};

/// Version of the job format; bumped on incompatible changes so an old
/// dispatcher refuses (and dead-letters) a job it cannot read.
pub const JOB_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
// Unknown fields are ignored, so a job written by a newer ingress (one more
// optional field) is still delivered by an older dispatcher during a deploy;
// incompatible changes bump `v` instead.
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub v: u32,
    pub event_id: String,
    pub request_type: String,
    pub to: String,
    pub otp: String,
    pub otp_expires: DateTime<Utc>,
    pub channel: Channel,
    pub locale: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Okta's request id, so the dispatcher's logs and the ledger carry the
    /// same correlation id as the ingress's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Okta's own SMS text, only with `SMS_TEXT=okta`. It holds the code, as
    /// `otp` does, and lives no longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub okta_text: Option<String>,
    /// How many times the DLQ replayer has sent this job back.
    #[serde(default)]
    pub replays: u32,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("event_id", &self.event_id)
            .field("request_type", &self.request_type)
            .field("channel", &self.channel)
            .field("locale", &self.locale)
            .field("replays", &self.replays)
            .finish_non_exhaustive()
    }
}

/// Why a queue message is not a job. Never quotes the message.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum JobError {
    #[error("message body is not a job ({0})")]
    NotAJob(&'static str),
    #[error("job version {0} is not supported")]
    Version(u32),
    #[error("job field {0} is invalid")]
    Field(&'static str),
}

impl Job {
    pub fn from_request(r: &DeliveryRequest) -> Self {
        Job {
            v: JOB_VERSION,
            event_id: r.event_id.as_str().to_owned(),
            request_type: r.request_type.as_str().to_owned(),
            to: r.phone.e164().to_owned(),
            otp: r.otp.expose().to_owned(),
            otp_expires: r.otp_expires,
            channel: r.channel,
            locale: r.locale.as_str().to_owned(),
            user_id: r.user_id.clone(),
            correlation_id: r.context.correlation_id.clone(),
            okta_text: r.context.okta_text.as_ref().map(|t| t.expose().to_owned()),
            replays: 0,
        }
    }

    pub fn encode(&self) -> String {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(body: &str) -> Result<Job, JobError> {
        let job: Job = serde_json::from_str(body).map_err(|e| {
            JobError::NotAJob(match e.classify() {
                serde_json::error::Category::Data => "wrong fields",
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    "not JSON"
                }
                serde_json::error::Category::Io => "io",
            })
        })?;
        if job.v != JOB_VERSION {
            return Err(JobError::Version(job.v));
        }
        Ok(job)
    }

    /// Re-validates every field through the same newtypes as the ingress.
    pub fn to_request(&self) -> Result<DeliveryRequest, JobError> {
        // The number is already E.164; the region only matters for numbers
        // without `+`, which a job never holds.
        let region: Region = "US".parse().map_err(|_| JobError::Field("to"))?;
        let otp = Otp::parse(&self.otp).map_err(|_| JobError::Field("otp"))?;
        Ok(DeliveryRequest {
            event_id: EventId::parse(&self.event_id).map_err(|_| JobError::Field("eventId"))?,
            request_type: RequestType::from_stored(&self.request_type)
                .map_err(|_| JobError::Field("requestType"))?,
            phone: if self.to.starts_with('+') {
                PhoneNumber::parse(&self.to, region).map_err(|_| JobError::Field("to"))?
            } else {
                return Err(JobError::Field("to"));
            },
            otp: otp.clone(),
            otp_expires: self.otp_expires,
            channel: self.channel,
            locale: Locale::parse(&self.locale).map_err(|_| JobError::Field("locale"))?,
            locale_from_request: true,
            user_id: self.user_id.clone(),
            context: SignInContext {
                correlation_id: self.correlation_id.clone(),
                client_ip: None,
                okta_text: match &self.okta_text {
                    Some(t) => Some(OktaText::new(t, &otp).ok_or(JobError::Field("oktaText"))?),
                    None => None,
                },
                notes: ReadNotes::default(),
            },
        })
    }
}
