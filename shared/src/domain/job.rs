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
use crate::domain::{
    DeliveryRequest, EventId, OktaText, ReadNotes, RequestType, SignInContext, UserRef,
};

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
    /// The keyed hash of Okta's user id ([`UserRef::key`]): a job waits
    /// in the queue and, failing, in the dead-letter queue, and neither may
    /// hold the raw id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key: Option<String>,
    /// The raw id, as jobs written before `userKey` carried it: still read,
    /// so a job queued during a deploy is matched, and never written.
    #[serde(default, rename = "userId", skip_serializing)]
    pub legacy_user_id: Option<String>,
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
    /// The job for a validated request; `hash` (`crypto::keyed`) turns the
    /// user id into its keyed hash, the only form a job holds.
    pub fn from_request(r: &DeliveryRequest, hash: impl Fn(&str) -> String) -> Self {
        Job {
            v: JOB_VERSION,
            event_id: r.event_id.as_str().to_owned(),
            request_type: r.request_type.as_str().to_owned(),
            to: r.phone.e164().to_owned(),
            otp: r.otp.expose().to_owned(),
            otp_expires: r.otp_expires,
            channel: r.channel,
            locale: r.locale.as_str().to_owned(),
            user_key: r.user_id.as_ref().map(|u| u.key(&hash)),
            legacy_user_id: None,
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
            user_id: match (&self.user_key, &self.legacy_user_id) {
                (Some(key), _) => Some(UserRef::Keyed(key.clone())),
                (None, Some(id)) => Some(UserRef::Okta(id.clone())),
                (None, None) => None,
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;

    const KEY: &[u8] = b"job-test-key";

    /// A stand-in for the keyed hash: the domain only passes it through.
    fn hash(id: &str) -> String {
        format!("h({}:{id})", KEY.len())
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn request(user: Option<&str>) -> DeliveryRequest {
        DeliveryRequest {
            event_id: EventId::parse("evt-job-1").unwrap(),
            request_type: RequestType::from_stored("com.okta.user.telephony.pre-enrollment")
                .unwrap(),
            phone: PhoneNumber::parse("+14155552671", "US".parse().unwrap()).unwrap(),
            otp: Otp::parse("0731415926").unwrap(),
            otp_expires: Utc::now(),
            channel: Channel::Sms,
            locale: Locale::parse("en").unwrap(),
            locale_from_request: true,
            user_id: user.map(UserRef::from),
            context: SignInContext::default(),
        }
    }

    #[test]
    fn a_job_holds_the_users_keyed_hash_and_never_the_id() {
        let raw = "00uRawOktaUserId7";
        let body = Job::from_request(&request(Some(raw)), hash).encode();
        assert!(!body.contains(raw), "{body}");
        assert!(!body.contains("userId"), "{body}");
        let want = UserRef::from(raw).key(hash);
        assert!(body.contains(&want), "{body}");
        // The dispatcher's key for the user is the ingress's: limits and
        // conversion matching agree across the queue.
        let back = Job::decode(&body).unwrap().to_request().unwrap();
        assert_eq!(back.user_id, Some(UserRef::Keyed(want.clone())));
        assert_eq!(back.user_id.unwrap().key(hash), want);
        // A job for a request without a user holds none.
        let body = Job::from_request(&request(None), hash).encode();
        assert!(!body.contains("userKey"), "{body}");
    }

    #[test]
    fn a_job_queued_before_the_user_was_hashed_is_still_matched() {
        let raw = "00uQueuedDuringDeploy";
        let mut old: serde_json::Value =
            serde_json::from_str(&Job::from_request(&request(None), hash).encode()).unwrap();
        old["userId"] = raw.into();
        let job = Job::decode(&old.to_string()).unwrap();
        let user = job.to_request().unwrap().user_id.unwrap();
        assert_eq!(user.key(hash), UserRef::from(raw).key(hash));
        // Sent on (a replay, a fallback check), it no longer holds the id.
        let again = Job::from_request(&job.to_request().unwrap(), hash).encode();
        assert!(!again.contains(raw), "{again}");
    }

    #[test]
    fn a_user_ref_never_prints_the_id() {
        let raw = "00uPrintedNowhere";
        let req = request(Some(raw));
        assert!(!format!("{req:?}").contains(raw));
        let key = UserRef::from(raw).key(hash);
        assert!(!format!("{:?}", UserRef::Keyed(key.clone())).contains(&key));
    }
}
