//! Sending through AWS End User Messaging SMS and voice
//! (`pinpoint-sms-voice-v2`): `SendTextMessage` for SMS, `SendVoiceMessage`
//! for calls.
//!
//! Neither call is idempotent on AWS's side; the ledger is. The origination
//! identity is picked per destination country from `ORIGINATION_IDENTITIES`.
//! `TimeToLive` is the OTP's remaining life, clamped to what the API takes,
//! and `Context` carries the event id and request type so delivery events can
//! be traced back to a hook. Sends enable message feedback, and
//! `PutMessageFeedback` later says whether the code was used.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::Client;
use aws_sdk_pinpointsmsvoicev2::error::ProvideErrorMetadata;
use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageError;
use aws_sdk_pinpointsmsvoicev2::operation::send_voice_message::SendVoiceMessageError;
use aws_sdk_pinpointsmsvoicev2::types::{
    MessageFeedbackStatus, MessageType, VoiceId, VoiceMessageBodyTextType,
};

use crate::aws::classify;
use crate::domain::Feedback;
use crate::domain::channel::Channel;
use crate::messenger::settings::EumSettings;
use crate::messenger::{Messenger, OutboundMessage, SendError, SendReceipt};
use crate::templates::TextType;

/// The API's bounds for `TimeToLive`, in seconds.
pub const MIN_TTL_SECONDS: i64 = 5;
pub const MAX_TTL_SECONDS: i64 = 259_200;

#[derive(Debug, Clone)]
pub struct EndUserMessaging {
    client: Client,
    settings: EumSettings,
}

type SdkError<E> = aws_sdk_pinpointsmsvoicev2::error::SdkError<
    E,
    aws_sdk_pinpointsmsvoicev2::config::http::HttpResponse,
>;

/// The code of a send refused before the call: no origination identity for
/// the destination's country (a route failure).
pub const NO_IDENTITY: &str = "NoOriginationIdentity";

/// The code of a send refused because the endpoint is not the service.
pub const NOT_THE_SERVICE: &str = "NotEndUserMessaging";

/// An answer from an endpoint that does not implement the API: what an
/// `AWS_ENDPOINT_URL` pointing at an emulator without End User Messaging
/// (or at the wrong port) gets back. Retrying cannot help, and a retryable
/// failure would only show as PENDING, so it is a permanent failure that
/// says what is wrong. AWS itself never answers an operation it has with
/// 501, and answers every error with the protocol's error type and a
/// request id; so the signs are a 501, a 404/405 without an error type, or
/// an error with neither a type nor a request id (an HTML error page).
fn foreign_answer<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Option<SendError> {
    let SdkError::ServiceError(se) = e else {
        return None;
    };
    let raw = se.raw();
    let status = raw.status().as_u16();
    let typed = se.err().code().is_some();
    let from_aws = raw.headers().contains_key("x-amzn-requestid");
    let foreign = status == 501 || (!typed && (matches!(status, 404 | 405) || !from_aws));
    if !foreign {
        return None;
    }
    let content_type = raw
        .headers()
        .get("content-type")
        .unwrap_or("no content type");
    tracing::error!(
        status,
        content_type,
        "the End User Messaging endpoint does not speak its API (SendTextMessage, SendVoiceMessage): \
         point AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2 at the service or at a stand-in such as `telehook sms-stub`"
    );
    Some(SendError::Permanent {
        code: NOT_THE_SERVICE.into(),
        reason: Some(format!(
            "HTTP {status} ({content_type}) from an endpoint that is not End User Messaging SMS and voice"
        )),
    })
}

pub(super) fn send_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E>,
    reason: Option<String>,
) -> SendError {
    if let Some(foreign) = foreign_answer(e) {
        return foreign;
    }
    let c = classify(e);
    if c.retryable {
        SendError::Retryable { code: c.code }
    } else {
        SendError::Permanent {
            code: c.code,
            reason,
        }
    }
}

impl EndUserMessaging {
    pub fn new(client: Client, settings: EumSettings) -> Self {
        EndUserMessaging { client, settings }
    }

    /// What the provider logs to the event destination with a message: the
    /// event id and request type, so a receipt finds its hook (both routes).
    pub(super) fn context(message: &OutboundMessage) -> HashMap<String, String> {
        HashMap::from([
            ("eventId".to_owned(), message.event_id.as_str().to_owned()),
            ("requestType".to_owned(), message.request_type.clone()),
        ])
    }
}

/// The request fields both sends share. The two SDK builders are different
/// types with the same setters, so this is a macro and not a function.
macro_rules! common_fields {
    ($builder:expr, $self:expr, $message:expr, $identity:expr, $ttl:expr) => {
        $builder
            .destination_phone_number($message.to.e164())
            .origination_identity($identity)
            .message_body(&$message.rendered.body)
            .time_to_live($ttl)
            .set_context(Some(Self::context($message)))
            // Conversion feedback (`PutMessageFeedback`) is only taken for
            // messages sent with it enabled.
            .message_feedback_enabled(true)
            .set_configuration_set_name($self.settings.configuration_set.clone())
            .set_protect_configuration_id($self.settings.protect_configuration_id.clone())
    };
}

impl EndUserMessaging {
    /// `SendTextMessage`; the provider's message id on success.
    async fn send_text(
        &self,
        message: &OutboundMessage,
        identity: &str,
        ttl: i32,
    ) -> Result<String, SendError> {
        let out = common_fields!(
            self.client.send_text_message(),
            self,
            message,
            identity,
            ttl
        )
        .message_type(MessageType::Transactional)
        .set_max_price(self.settings.max_price.clone())
        .send()
        .await
        .map_err(|e| {
            let reason = match e.as_service_error() {
                Some(SendTextMessageError::ConflictException(c)) => c.reason().map(|r| r.as_str()),
                Some(SendTextMessageError::ValidationException(v)) => {
                    v.reason().map(|r| r.as_str())
                }
                Some(SendTextMessageError::ServiceQuotaExceededException(q)) => {
                    q.reason().map(|r| r.as_str())
                }
                _ => None,
            };
            send_error(&e, reason.map(str::to_owned))
        })?;
        Ok(out.message_id.unwrap_or_default())
    }

    /// `SendVoiceMessage`; the provider's message id on success.
    async fn send_voice(
        &self,
        message: &OutboundMessage,
        identity: &str,
        ttl: i32,
    ) -> Result<String, SendError> {
        let voice = message
            .rendered
            .voice_id
            .as_deref()
            .unwrap_or("Joanna")
            .to_ascii_uppercase();
        let text_type = match message.rendered.text_type {
            TextType::Ssml => VoiceMessageBodyTextType::Ssml,
            TextType::Text => VoiceMessageBodyTextType::Text,
        };
        let out = common_fields!(
            self.client.send_voice_message(),
            self,
            message,
            identity,
            ttl
        )
        .message_body_text_type(text_type)
        .voice_id(VoiceId::from(voice.as_str()))
        .set_max_price_per_minute(self.settings.max_price_per_minute.clone())
        .send()
        .await
        .map_err(|e| {
            let reason = match e.as_service_error() {
                Some(SendVoiceMessageError::ConflictException(c)) => c.reason().map(|r| r.as_str()),
                Some(SendVoiceMessageError::ValidationException(v)) => {
                    v.reason().map(|r| r.as_str())
                }
                _ => None,
            };
            send_error(&e, reason.map(str::to_owned))
        })?;
        Ok(out.message_id.unwrap_or_default())
    }
}

#[async_trait]
impl Messenger for EndUserMessaging {
    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %message.event_id, to = %message.to))]
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let region = message.to.region().map(|r| r.as_str());
        let identity = self
            .settings
            .origination
            .for_region(region)
            .ok_or_else(|| SendError::Permanent {
                code: NO_IDENTITY.into(),
                reason: region.map(str::to_owned),
            })?;
        let ttl = i32::try_from(message.ttl_seconds.clamp(MIN_TTL_SECONDS, MAX_TTL_SECONDS))
            .unwrap_or(300);
        let message_id = match message.rendered.channel {
            Channel::Sms => self.send_text(message, identity, ttl).await?,
            Channel::Voice => self.send_voice(message, identity, ttl).await?,
        };
        if message_id.is_empty() {
            // Accepted without an id is not something we can confirm.
            return Err(SendError::Retryable {
                code: "NoMessageId".into(),
            });
        }
        Ok(SendReceipt { message_id })
    }

    async fn feedback(&self, message_id: &str, status: Feedback) -> Result<(), SendError> {
        put_feedback(&self.client, message_id, status).await
    }
}

/// `PutMessageFeedback`: the same for a message of either route.
#[tracing::instrument(level = "debug", skip_all, fields(status = status.as_str()))]
pub(super) async fn put_feedback(
    client: &Client,
    message_id: &str,
    status: Feedback,
) -> Result<(), SendError> {
    let status = match status {
        Feedback::Received => MessageFeedbackStatus::Received,
        Feedback::Failed => MessageFeedbackStatus::Failed,
    };
    client
        .put_message_feedback()
        .message_id(message_id)
        .message_feedback_status(status)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| send_error(&e, None))
}
