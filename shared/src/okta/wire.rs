//! Okta's telephony inline hook on the wire: the request Okta POSTs and the
//! command or error object we answer with.
//!
//! Only the fields we use are declared; serde ignores the rest whatever
//! their type, because Okta's docs, its Preview tab and older orgs send the
//! CloudEvents envelope (`eventTypeVersion`, `cloudEventVersion`, `source`,
//! ...) as strings, numbers or objects. The fields we use are optional here so
//! that a missing one is reported by name in validation, not as a serde
//! error. Fields we use only for logs, correlation and limits (the user id,
//! the request context, `msgTemplate`) are read leniently: a number is its
//! text, any other type is as if absent.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use crate::domain::ActionStatus;

pub const EVENT_TYPE: &str = "com.okta.telephony.provider";
pub const COMMAND_TYPE: &str = "com.okta.telephony.action";
pub const PROVIDER_NAME: &str = "AWS End User Messaging";

/// What Okta may show an end user when we refuse a hook. Generic on purpose.
pub const SUMMARY_INVALID: &str = "The telephony request was not valid";
pub const SUMMARY_NOT_DELIVERED: &str = "Could not deliver the code";

/// The hook request as Okta sends it, reduced to what we read.
/// No `Debug` derive: the message profile carries the OTP and the number.
#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Lenient: used only for logs, metrics and the provider's `Context`.
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<HookData>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookData {
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<HookContext>,
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_profile: Option<UserProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_profile: Option<MessageProfile>,
}

/// `data.context`: the Okta request that asked for the code.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookContext {
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub request: Option<ContextRequest>,
}

/// `data.context.request`: Okta's request id (the correlation id of the
/// sign-in in Okta's System Log) and the end user's IP address.
#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextRequest {
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_address: Option<String>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    /// Okta's user id; older orgs and some samples send it as a number.
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<String>,
}

#[derive(Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageProfile {
    /// Okta's own SMS text. It contains the code: never logged.
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub msg_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_code: Option<String>,
    /// Lenient: a locale we cannot read falls back to `DEFAULT_LOCALE`, so
    /// a wrong type must not refuse the code either.
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub locale: Option<String>,
}

/// A string as is, a number as its text, anything else as absent.
fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// An object read into `T` (whose fields are lenient themselves); anything
/// else as absent.
fn lenient_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        v @ Value::Object(_) => serde_json::from_value(v).ok(),
        _ => None,
    })
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
            .field("message_profile", &self.message_profile)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ContextRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextRequest")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for UserProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserProfile").finish_non_exhaustive()
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

/// One cause in Okta's error object, with the fields Okta documents for
/// inline hook errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCause {
    pub error_summary: String,
    /// A stable machine-readable code (`INVALID_VALUE`, `COUNTRY_NOT_ALLOWED`).
    pub reason: String,
    /// What `location` points into: `body` for a request field, `delivery`
    /// for a refusal or a failed send.
    pub location_type: String,
    /// The JSON path of the field, or what was refused.
    pub location: String,
    /// Who can act on it: `request` (Okta's body), `policy` (our guard),
    /// `provider` (delivery).
    pub domain: String,
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
        let lenient: HookRequest = serde_json::from_value(json!({
            "eventTypeVersion": 1.0, "cloudEventVersion": 0.1,
            "source": {"id": "x"}, "eventTime": 5,
            "data": {"userProfile": {"userId": 42, "login": 7},
                     "context": {"request": {"id": ["x"], "ipAddress": "203.0.113.7"}},
                     "messageProfile": {"msgTemplate": {"x": 1}}}
        }))
        .unwrap();
        let data = lenient.data.unwrap();
        assert_eq!(data.user_profile.unwrap().user_id.as_deref(), Some("42"));
        let request = data.context.unwrap().request.unwrap();
        assert_eq!(request.id, None);
        assert_eq!(request.ip_address.as_deref(), Some("203.0.113.7"));
        assert_eq!(data.message_profile.unwrap().msg_template, None);
        let odd: HookRequest =
            serde_json::from_value(json!({"data": {"userProfile": "x", "context": 3}})).unwrap();
        assert!(odd.data.unwrap().user_profile.is_none());
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"error":{"errorSummary":"Could not deliver the code"}})
        );
    }
}
