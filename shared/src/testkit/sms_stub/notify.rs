//! The stand-in's Notify side: `SendNotifyTextMessage` and
//! `SendNotifyVoiceMessage` checked as the service checks them (the
//! configuration, the number, the template and its code variable, the
//! countries of a new configuration), `DescribeNotifyTemplates` with a
//! small catalog of our own, and `DescribeNotifyConfigurations` answering
//! for any id as a new, active, Basic-tier configuration.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Stub, aws_error, aws_response, is_e164, mask, validation};
use crate::domain::{PhoneNumber, Region, Route};
use crate::messenger::notify::BASIC_TIER_COUNTRIES;

/// The stand-in's templates: id, language, channels, text. Ours, in the
/// shape of Notify's code-verification templates: one customer variable,
/// `code`.
const TEMPLATES: &[(&str, &str, &[&str], &str)] = &[
    (
        "stub-code-en",
        "en",
        &["SMS", "VOICE"],
        "Your verification code is {{code}}.",
    ),
    (
        "stub-code-es",
        "es",
        &["SMS", "VOICE"],
        "Tu código de verificación es {{code}}.",
    ),
    (
        "stub-code-fr",
        "fr",
        &["SMS"],
        "Votre code de vérification est {{code}}.",
    ),
    (
        "stub-code-de",
        "de",
        &["SMS"],
        "Ihr Bestätigungscode lautet {{code}}.",
    ),
    (
        "stub-code-pt-br",
        "pt-BR",
        &["SMS"],
        "Seu código de verificação é {{code}}.",
    ),
];

pub(super) fn templates() -> Response {
    let list: Vec<Value> = TEMPLATES
        .iter()
        .map(|(id, language, channels, content)| {
            json!({
                "TemplateId": id,
                "Version": 1,
                "TemplateType": "CODE_VERIFICATION",
                "Channels": channels,
                "TierAccess": ["BASIC", "ADVANCED"],
                "Status": "ACTIVE",
                "SupportedCountries": BASIC_TIER_COUNTRIES,
                "LanguageCode": language,
                "Content": content,
                "Variables": {"code": {"Type": "STRING", "Required": true, "Source": "CUSTOMER"}},
                "CreatedTimestamp": 1_767_225_600,
            })
        })
        .collect();
    aws_response(StatusCode::OK, &json!({"NotifyTemplates": list}), None)
}

pub(super) fn configurations(req: &Map<String, Value>) -> Response {
    let ids: Vec<&str> = req
        .get("NotifyConfigurationIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let list: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "NotifyConfigurationArn": format!("arn:aws:sms-voice:us-east-1:123456789012:notify-configuration/{id}"),
                "NotifyConfigurationId": id,
                "DisplayName": "telehook",
                "UseCase": "CODE_VERIFICATION",
                "EnabledCountries": BASIC_TIER_COUNTRIES,
                "EnabledChannels": ["SMS", "VOICE"],
                "Tier": "BASIC",
                "TierUpgradeStatus": "BASIC",
                "Status": "ACTIVE",
                "DeletionProtectionEnabled": false,
                "CreatedTimestamp": 1_767_225_600,
            })
        })
        .collect();
    aws_response(StatusCode::OK, &json!({"NotifyConfigurations": list}), None)
}

/// A Notify send: checked, then a scheduled fault for the Notify route or
/// an accepted message with the template's text.
pub(super) fn send(
    stub: &Stub,
    operation: &str,
    channel: &str,
    req: &Map<String, Value>,
) -> Response {
    let text = |k: &str| super::text(req, k);
    let (to, context) = stub.summarize(operation, req, &["NotifyConfigurationId", "TemplateId"]);
    let code = req
        .get("TemplateVariables")
        .and_then(|v| v.get("code"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    let missing: Vec<&str> = [
        (
            "NotifyConfigurationId",
            text("NotifyConfigurationId").is_some(),
        ),
        ("DestinationPhoneNumber", to.is_some_and(is_e164)),
        ("TemplateVariables", code.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, ok)| (!ok).then_some(name))
    .collect();
    if !missing.is_empty() {
        return validation(&missing);
    }
    let (to, code) = (to.unwrap_or_default(), code.unwrap_or_default());
    let wanted = channel.to_ascii_uppercase();
    let template = match text("TemplateId") {
        None => TEMPLATES.first(),
        Some(id) => TEMPLATES.iter().find(|t| t.0 == id),
    };
    let Some((_, _, _, content)) = template.filter(|t| t.2.contains(&wanted.as_str())) else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "no such Notify template for this channel (stub)",
            json!({"ResourceType": "notify-template", "ResourceId": text("TemplateId")}),
        );
    };
    // The number is E.164 (checked above), so the default region is moot.
    let country = "US"
        .parse::<Region>()
        .ok()
        .and_then(|us| PhoneNumber::parse(to, us).ok())
        .and_then(|p| p.region().map(|r| r.as_str().to_owned()));
    if !country
        .as_deref()
        .is_some_and(|c| BASIC_TIER_COUNTRIES.contains(&c))
    {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "The destination country is not enabled for this configuration (stub)",
            json!({"Reason": "COUNTRY_NOT_ENABLED", "Fields": []}),
        );
    }
    if let Some(fault) = stub.next_fault(Route::Notify) {
        stub.notice(&format!(
            "notify {channel} to {} answered {fault:?}",
            mask(to)
        ));
        return fault.response();
    }
    let body = content.replace("{{code}}", code);
    stub.accept(&context, channel, to, &body, text("VoiceId"), Route::Notify)
}
