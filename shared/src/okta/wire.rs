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

use std::marker::PhantomData;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::json::Text;

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
    Ok(LenientText::deserialize(d)?.0)
}

/// An object read into `T` (whose fields are lenient themselves); anything
/// else as absent. Read field by field as it streams, a repeated name's last
/// value winning and unknown names skipped: what reading it into a JSON value
/// first and then into `T` did, without building the value.
fn lenient_object<'de, D: Deserializer<'de>, T: LenientFields>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_any(LenientObject(PhantomData))
}

/// [`lenient_text`]'s reading of one value.
struct LenientText(Option<String>);

impl<'de> Deserialize<'de> for LenientText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientText, E> {
                Ok(LenientText(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<LenientText, E> {
                Ok(LenientText(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LenientText, E> {
                Ok(LenientText(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LenientText, E> {
                Ok(LenientText(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LenientText, E> {
                // As a JSON number prints (`1.0`, `1e+30`).
                Ok(LenientText(
                    serde_json::Number::from_f64(v).map(|n| n.to_string()),
                ))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LenientText, E> {
                Ok(LenientText(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LenientText, E> {
                Ok(LenientText(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<LenientText, E> {
                Ok(LenientText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<LenientText, A::Error> {
                skip_seq(seq).map(|()| LenientText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LenientText, A::Error> {
                skip_map(map).map(|()| LenientText(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields a leniently read object takes; every value read through
/// [`LenientText`] or [`lenient_object`], so no value's type is an error.
trait LenientFields: Default {
    /// Reads the value of `key` when it is one of ours; `false` otherwise
    /// (the caller skips it).
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

struct LenientObject<T>(PhantomData<T>);

impl<'de, T: LenientFields> Visitor<'de> for LenientObject<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut value = T::default();
        while let Some(Text(key)) = map.next_key()? {
            if !value.field(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(value))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        skip_seq(seq).map(|()| None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl LenientFields for HookContext {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "request" => self.request = map.next_value::<Lenient<ContextRequest>>()?.0,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl LenientFields for ContextRequest {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "id" => self.id = map.next_value::<LenientText>()?.0,
            "ipAddress" => self.ip_address = map.next_value::<LenientText>()?.0,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl LenientFields for UserProfile {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "userId" => self.user_id = map.next_value::<LenientText>()?.0,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A nested lenient object as a map value.
struct Lenient<T>(Option<T>);

impl<'de, T: LenientFields> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_object(d).map(Lenient)
    }
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
    use serde_json::{Value, json};

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

    /// The lenient fields read as streaming used to read them through a JSON
    /// value: a string as is, a number as its text, anything else absent;
    /// an object's repeated name, its last value; a non-object, absent.
    #[test]
    fn lenient_fields_read_every_json_shape_as_through_a_value() {
        fn text(v: &Value) -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }
        let shapes = [
            json!("00u1"),
            json!(""),
            json!(12345),
            json!(-7),
            json!(1.5),
            json!(1e30),
            json!(18446744073709551615u64),
            json!(true),
            json!(null),
            json!([1, "a", {"b": [2]}]),
            json!({"nested": {"deep": [1, 2, {"x": null}]}}),
        ];
        for v in &shapes {
            let body = json!({"data": {
                "userProfile": {"userId": v, "login": v},
                "context": {"request": {"id": v, "ipAddress": v, "url": v}},
            }});
            let wire: HookRequest = serde_json::from_value(body).unwrap();
            let data = wire.data.unwrap();
            assert_eq!(data.user_profile.unwrap().user_id, text(v), "{v}");
            let request = data.context.unwrap().request.unwrap();
            assert_eq!(request.id, text(v), "{v}");
            assert_eq!(request.ip_address, text(v), "{v}");
            // The object itself as any other shape: absent.
            let body = json!({"data": {"userProfile": v, "context": {"request": v}}});
            let data = serde_json::from_value::<HookRequest>(body)
                .unwrap()
                .data
                .unwrap();
            assert!(data.user_profile.is_none() || v.is_object(), "{v}");
            assert!(
                data.context.unwrap().request.is_none() || v.is_object(),
                "{v}"
            );
        }
        // A repeated name: the last value, as a JSON object keeps it.
        let text = r#"{"data":{"userProfile":{"userId":"first","userId":"last"},
            "context":{"request":{"id":1,"id":{"x":1}},"request":{"ipAddress":"192.0.2.1"}}}}"#;
        let data = serde_json::from_str::<HookRequest>(text)
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data.user_profile.unwrap().user_id.as_deref(), Some("last"));
        let request = data.context.unwrap().request.unwrap();
        assert_eq!(request.id, None);
        assert_eq!(request.ip_address.as_deref(), Some("192.0.2.1"));
        // Escaped keys are the same keys.
        let text = r#"{"data":{"userProfile":{"user\u0049d":"00u9"}}}"#;
        let data = serde_json::from_str::<HookRequest>(text)
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data.user_profile.unwrap().user_id.as_deref(), Some("00u9"));
    }
}
