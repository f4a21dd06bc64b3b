//! Okta's telephony inline hook on the wire: the request Okta POSTs and the
//! command or error object we answer with.
//!
//! Every request field is optional here so that a missing field is reported
//! by name in validation, not as a serde error, and unknown fields are
//! ignored, because Okta adds fields over time.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::domain::ActionStatus;

pub const EVENT_TYPE: &str = "com.okta.telephony.provider";
pub const COMMAND_TYPE: &str = "com.okta.telephony.action";
pub const PROVIDER_NAME: &str = "AWS End User Messaging";

/// What Okta may show an end user when we refuse a hook. Generic on purpose.
pub const SUMMARY_INVALID: &str = "The telephony request was not valid";
pub const SUMMARY_NOT_DELIVERED: &str = "Could not deliver the code";

/// The hook request as Okta sends it. Every field is optional here so that a
/// missing field is reported by name in [`parse_hook`], not as a serde error.
/// No `Debug`: the message profile carries the OTP and the number.
#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_event_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<HookData>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_profile: Option<UserProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_profile: Option<MessageProfile>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageProfile {
    /// Okta's own SMS text. It contains the code; we never use or log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

// These Debug impls exist so wire values can sit in structs that derive
// Debug; they show what is safe (ids, types, channel) and hide the rest.
impl fmt::Debug for HookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookRequest")
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("request_type", &self.request_type)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for HookData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookData")
            .field("user_profile", &self.user_profile)
            .field("message_profile", &self.message_profile)
            .finish()
    }
}

impl fmt::Debug for UserProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserProfile")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for MessageProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageProfile")
            .field("delivery_channel", &self.delivery_channel)
            .field("locale", &self.locale)
            .field("otp_expires", &self.otp_expires)
            .finish_non_exhaustive()
    }
}

/// What we answer Okta with: either `commands` or `error`, always HTTP 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<Command>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Vec<ActionValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionValue {
    pub status: ActionStatus,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorObject {
    pub error_summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_causes: Vec<ErrorCause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCause {
    pub error_summary: String,
    pub reason: String,
    pub location: String,
}

impl HookResponse {
    /// A `com.okta.telephony.action` command with one status value.
    pub fn action(
        status: ActionStatus,
        transaction_id: Option<String>,
        transaction_metadata: Option<String>,
    ) -> Self {
        HookResponse {
            commands: Some(vec![Command {
                kind: COMMAND_TYPE.to_owned(),
                value: vec![ActionValue {
                    status,
                    provider: PROVIDER_NAME.to_owned(),
                    transaction_id,
                    transaction_metadata,
                }],
            }]),
            error: None,
        }
    }

    /// Okta's error object. `summary` may reach end users: keep it generic.
    pub fn error(summary: &str, causes: Vec<ErrorCause>) -> Self {
        HookResponse {
            commands: None,
            error: Some(ErrorObject {
                error_summary: summary.to_owned(),
                error_causes: causes,
            }),
        }
    }

    /// The status of the first action, if this is a command response.
    pub fn status(&self) -> Option<ActionStatus> {
        self.commands
            .as_ref()?
            .first()?
            .value
            .first()
            .map(|v| v.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn response_shapes() {
        let ok = HookResponse::action(ActionStatus::Successful, Some("m-1".into()), None);
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"commands":[{"type":"com.okta.telephony.action","value":[{"status":"SUCCESSFUL","provider":"AWS End User Messaging","transactionId":"m-1"}]}]})
        );
        let err = HookResponse::error(SUMMARY_NOT_DELIVERED, vec![]);
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"error":{"errorSummary":"Could not deliver the code"}})
        );
    }
}
