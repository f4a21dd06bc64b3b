//! Sending through AWS End User Messaging Notify: `SendNotifyTextMessage`
//! and `SendNotifyVoiceMessage` through a Notify configuration. AWS picks
//! the origination identity and the message text comes from its
//! pre-approved templates, so there is no number to buy and no registration
//! in the countries the configuration serves.
//!
//! The template is chosen per message from a catalog read with
//! `DescribeNotifyTemplates` and kept for an hour ([`Catalog::choose`]): an
//! active template of the message's channel that serves the destination's
//! country and whose only customer variable is the code, in the person's
//! language by the locale's fallbacks (`pt-BR`, then `pt`), else English,
//! else none named, so the configuration's default template is used. The
//! configuration itself (`DescribeNotifyConfigurations`, read with the
//! catalog) says which countries and channels it serves and whether it is
//! active; a message it cannot take fails as a route failure before any
//! call, so a second route can take it. Either read failing leaves the
//! choice to the service.
//!
//! `TimeToLive` is the code's remaining life, clamped as for the own route;
//! `Context`, the configuration set and message feedback are as for the own
//! route, so receipts, conversions and the guard work the same.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::Client;
use aws_sdk_pinpointsmsvoicev2::operation::send_notify_text_message::SendNotifyTextMessageError;
use aws_sdk_pinpointsmsvoicev2::operation::send_notify_voice_message::SendNotifyVoiceMessageError;
use aws_sdk_pinpointsmsvoicev2::types::{
    NotifyConfigurationStatus, NotifyTemplateStatus, NumberCapability, TemplateVariableSource,
    VoiceId,
};

use super::eum::{EndUserMessaging, MAX_TTL_SECONDS, MIN_TTL_SECONDS, put_feedback, send_error};
use super::settings::NotifySettings;
use super::{Messenger, OutboundMessage, SendError, SendReceipt};
use crate::domain::channel::Channel;
use crate::domain::{Feedback, Locale};

/// A send refused before the call: the configuration does not serve the
/// destination's country or the message's channel (a route failure).
pub const NOT_SERVED: &str = "NotifyNotServed";
/// A send refused before the call: the configuration is not active yet
/// (pending review) or was rejected (a route failure).
pub const NOT_ACTIVE: &str = "NotifyConfigurationNotActive";

/// The countries a new (Basic tier) Notify configuration serves, as the
/// End User Messaging guide lists them; `ListNotifyCountries` has the
/// current list. Local mode's Notify stand-in and the stub serve these.
pub const BASIC_TIER_COUNTRIES: &[&str] = &[
    "AS", "AU", "BE", "BR", "CA", "CO", "DK", "FI", "FR", "DE", "GU", "HK", "IN", "IE", "IT", "JP",
    "MX", "NL", "NZ", "MP", "PT", "PR", "SG", "KR", "ES", "SE", "CH", "GB", "US", "VI",
];

/// A new Notify configuration as local mode plays it: active, SMS and
/// voice, the Basic tier's countries.
pub fn basic_tier() -> Catalog {
    Catalog {
        templates: Vec::new(),
        countries: Some(
            BASIC_TIER_COUNTRIES
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
        ),
        channels: Some(vec![Channel::Sms, Channel::Voice]),
        active: Some(true),
    }
}

/// How long a catalog is used before it is read again; a failed read is
/// tried again after a minute.
const CATALOG_TTL: Duration = Duration::from_secs(3600);
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// One Notify template, as far as choosing it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTemplate {
    pub id: String,
    /// `en`, `es`, `pt-BR`…
    pub language: String,
    pub channels: Vec<Channel>,
    /// Empty: every country the configuration serves.
    pub countries: Vec<String>,
    /// The customer variable that takes the code.
    pub code_variable: String,
}

/// What the configuration serves and which templates it may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub templates: Vec<NotifyTemplate>,
    /// The configuration's countries and channels, and whether it is
    /// active; `None` when they could not be read.
    pub countries: Option<Vec<String>>,
    pub channels: Option<Vec<Channel>>,
    pub active: Option<bool>,
}

impl Catalog {
    /// Whether the configuration takes this message; `Err` is the route
    /// failure to report.
    pub fn admits(&self, channel: Channel, country: Option<&str>) -> Result<(), SendError> {
        if self.active == Some(false) {
            return Err(SendError::Permanent {
                code: NOT_ACTIVE.into(),
                reason: None,
            });
        }
        let channel_ok = self.channels.as_ref().is_none_or(|c| c.contains(&channel));
        let country_ok = match (&self.countries, country) {
            (Some(served), Some(country)) => served.iter().any(|c| c == country),
            // A number whose country is unknown: let the service decide.
            _ => true,
        };
        if channel_ok && country_ok {
            Ok(())
        } else {
            Err(SendError::Permanent {
                code: NOT_SERVED.into(),
                reason: Some(format!(
                    "{} to {}",
                    channel.as_str(),
                    country.unwrap_or("unknown")
                )),
            })
        }
    }

    /// The template for a message: see the module docs for the order.
    pub fn choose(
        &self,
        channel: Channel,
        locale: &Locale,
        country: Option<&str>,
    ) -> Option<&NotifyTemplate> {
        let usable = |t: &&NotifyTemplate| {
            t.channels.contains(&channel)
                && (t.countries.is_empty()
                    || country.is_none_or(|c| t.countries.iter().any(|tc| tc == c)))
        };
        let speaks = |t: &NotifyTemplate, language: &str| {
            let l = t.language.to_ascii_lowercase();
            let want = language.to_ascii_lowercase();
            l == want || l.split(['-', '_']).next() == Some(want.as_str())
        };
        let mut languages: Vec<&str> = locale.fallbacks();
        languages.push("en");
        languages.into_iter().find_map(|language| {
            // An exact tag first (`pt-BR`), then any of its language.
            self.templates
                .iter()
                .filter(usable)
                .find(|t| t.language.eq_ignore_ascii_case(language))
                .or_else(|| {
                    self.templates
                        .iter()
                        .filter(usable)
                        .find(|t| speaks(t, language))
                })
        })
    }
}

#[derive(Debug)]
struct Cached {
    catalog: std::sync::Arc<Catalog>,
    until: Instant,
}

#[derive(Debug)]
pub struct Notify {
    client: Client,
    settings: NotifySettings,
    cache: Mutex<Option<Cached>>,
}

fn channel_of(c: &NumberCapability) -> Option<Channel> {
    match c {
        NumberCapability::Sms => Some(Channel::Sms),
        NumberCapability::Voice => Some(Channel::Voice),
        _ => None,
    }
}

impl Notify {
    pub fn new(client: Client, settings: NotifySettings) -> Self {
        Notify {
            client,
            settings,
            cache: Mutex::new(None),
        }
    }

    /// The catalog, read again once it is an hour old.
    async fn catalog(&self) -> std::sync::Arc<Catalog> {
        let fresh = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|c| c.until > Instant::now())
            .map(|c| c.catalog.clone());
        if let Some(catalog) = fresh {
            return catalog;
        }
        let (catalog, ttl) = match (self.templates().await, self.configuration().await) {
            (Ok(templates), Ok(config)) => (
                Catalog {
                    templates,
                    ..config
                },
                CATALOG_TTL,
            ),
            (templates, config) => {
                tracing::warn!(
                    templates_read = templates.is_ok(),
                    configuration_read = config.is_ok(),
                    "the Notify catalog could not be read; the service chooses"
                );
                let catalog = Catalog {
                    templates: templates.unwrap_or_default(),
                    ..config.unwrap_or_default()
                };
                (catalog, RETRY_AFTER)
            }
        };
        let catalog = std::sync::Arc::new(catalog);
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            catalog: catalog.clone(),
            until: Instant::now() + ttl,
        });
        catalog
    }

    async fn templates(&self) -> Result<Vec<NotifyTemplate>, SendError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .describe_notify_templates()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| send_error(&e, None))?;
            out.extend(page.notify_templates().iter().filter_map(|t| {
                if t.status() != Some(&NotifyTemplateStatus::Active) {
                    return None;
                }
                let customer: Vec<&String> = t
                    .variables()
                    .map(|v| {
                        v.iter()
                            .filter(|(_, m)| {
                                m.source() == Some(&TemplateVariableSource::Customer)
                                    && (m.required() || m.default_value().is_none())
                            })
                            .map(|(name, _)| name)
                            .collect()
                    })
                    .unwrap_or_default();
                // The code is the only thing we can fill in.
                let [code] = customer.as_slice() else {
                    return None;
                };
                Some(NotifyTemplate {
                    id: t.template_id().to_owned(),
                    language: t.language_code().unwrap_or("en").to_owned(),
                    channels: t.channels().iter().filter_map(channel_of).collect(),
                    countries: t.supported_countries().to_vec(),
                    code_variable: (*code).clone(),
                })
            }));
        }
        Ok(out)
    }

    async fn configuration(&self) -> Result<Catalog, SendError> {
        let out = self
            .client
            .describe_notify_configurations()
            .notify_configuration_ids(&self.settings.configuration_id)
            .send()
            .await
            .map_err(|e| send_error(&e, None))?;
        let Some(c) = out.notify_configurations().first() else {
            return Ok(Catalog::default());
        };
        Ok(Catalog {
            templates: Vec::new(),
            countries: c.enabled_countries.clone(),
            channels: Some(c.enabled_channels().iter().filter_map(channel_of).collect()),
            active: Some(c.status() == &NotifyConfigurationStatus::Active),
        })
    }

    fn variables(
        message: &OutboundMessage,
        template: Option<&NotifyTemplate>,
    ) -> HashMap<String, String> {
        let name = template.map_or("code", |t| t.code_variable.as_str());
        HashMap::from([(name.to_owned(), message.code.expose().to_owned())])
    }
}

/// The fields both Notify sends share (two SDK builders with the same
/// setters, so a macro).
macro_rules! notify_fields {
    ($builder:expr, $self:expr, $message:expr, $template:expr, $ttl:expr) => {
        $builder
            .notify_configuration_id(&$self.settings.configuration_id)
            .destination_phone_number($message.to.e164())
            .set_template_id($template.map(|t: &NotifyTemplate| t.id.clone()))
            .set_template_variables(Some(Self::variables($message, $template)))
            .time_to_live($ttl)
            .set_context(Some(EndUserMessaging::context($message)))
            .message_feedback_enabled(true)
            .set_configuration_set_name($self.settings.configuration_set.clone())
    };
}

impl Notify {
    async fn send_text(
        &self,
        message: &OutboundMessage,
        template: Option<&NotifyTemplate>,
        ttl: i32,
    ) -> Result<Option<String>, SendError> {
        notify_fields!(
            self.client.send_notify_text_message(),
            self,
            message,
            template,
            ttl
        )
        .send()
        .await
        .map(|out| out.message_id)
        .map_err(|e| {
            let reason = match e.as_service_error() {
                Some(SendNotifyTextMessageError::ConflictException(c)) => {
                    c.reason().map(|r| r.as_str())
                }
                Some(SendNotifyTextMessageError::ValidationException(v)) => {
                    v.reason().map(|r| r.as_str())
                }
                Some(SendNotifyTextMessageError::ServiceQuotaExceededException(q)) => {
                    q.reason().map(|r| r.as_str())
                }
                _ => None,
            };
            send_error(&e, reason.map(str::to_owned))
        })
    }

    async fn send_voice(
        &self,
        message: &OutboundMessage,
        template: Option<&NotifyTemplate>,
        ttl: i32,
    ) -> Result<Option<String>, SendError> {
        let voice = message
            .rendered
            .voice_id
            .as_deref()
            .map(|v| VoiceId::from(v.to_ascii_uppercase().as_str()));
        notify_fields!(
            self.client.send_notify_voice_message(),
            self,
            message,
            template,
            ttl
        )
        .set_voice_id(voice)
        .send()
        .await
        .map(|out| out.message_id)
        .map_err(|e| {
            let reason = match e.as_service_error() {
                Some(SendNotifyVoiceMessageError::ConflictException(c)) => {
                    c.reason().map(|r| r.as_str())
                }
                Some(SendNotifyVoiceMessageError::ValidationException(v)) => {
                    v.reason().map(|r| r.as_str())
                }
                Some(SendNotifyVoiceMessageError::ServiceQuotaExceededException(q)) => {
                    q.reason().map(|r| r.as_str())
                }
                _ => None,
            };
            send_error(&e, reason.map(str::to_owned))
        })
    }
}

#[async_trait]
impl Messenger for Notify {
    #[tracing::instrument(level = "debug", skip_all, fields(event_id = %message.event_id, to = %message.to, route = "notify"))]
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let channel = message.rendered.channel;
        let country = message.to.region().map(|r| r.as_str());
        let catalog = self.catalog().await;
        catalog.admits(channel, country)?;
        let template = catalog.choose(channel, &message.locale, country);
        let ttl = i32::try_from(message.ttl_seconds.clamp(MIN_TTL_SECONDS, MAX_TTL_SECONDS))
            .unwrap_or(300);
        let message_id = match channel {
            Channel::Sms => self.send_text(message, template, ttl).await?,
            Channel::Voice => self.send_voice(message, template, ttl).await?,
        };
        match message_id.filter(|id| !id.is_empty()) {
            Some(message_id) => Ok(SendReceipt { message_id }),
            // Accepted without an id is not something we can confirm.
            None => Err(SendError::Retryable {
                code: "NoMessageId".into(),
            }),
        }
    }

    async fn feedback(&self, message_id: &str, status: Feedback) -> Result<(), SendError> {
        put_feedback(&self.client, message_id, status).await
    }

    async fn warm(&self) {
        self.catalog().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(
        id: &str,
        language: &str,
        channels: &[Channel],
        countries: &[&str],
    ) -> NotifyTemplate {
        NotifyTemplate {
            id: id.into(),
            language: language.into(),
            channels: channels.to_vec(),
            countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            code_variable: "code".into(),
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            templates: vec![
                template("en-sms", "en", &[Channel::Sms], &[]),
                template("en-voice", "en", &[Channel::Voice], &[]),
                template("es-both", "es", &[Channel::Sms, Channel::Voice], &[]),
                template("pt-br-sms", "pt-BR", &[Channel::Sms], &["BR"]),
                template("fr-sms-ca", "fr", &[Channel::Sms], &["CA"]),
            ],
            countries: Some(vec!["US".into(), "BR".into(), "CA".into(), "FR".into()]),
            channels: Some(vec![Channel::Sms, Channel::Voice]),
            active: Some(true),
        }
    }

    fn chosen(locale: &str, channel: Channel, country: &str) -> Option<String> {
        catalog()
            .choose(channel, &Locale::parse(locale).unwrap(), Some(country))
            .map(|t| t.id.clone())
    }

    #[test]
    fn templates_follow_the_language_then_english() {
        assert_eq!(
            chosen("es-MX", Channel::Sms, "US").as_deref(),
            Some("es-both")
        );
        assert_eq!(
            chosen("es", Channel::Voice, "US").as_deref(),
            Some("es-both")
        );
        assert_eq!(
            chosen("pt-BR", Channel::Sms, "BR").as_deref(),
            Some("pt-br-sms")
        );
        assert_eq!(
            chosen("pt", Channel::Sms, "BR").as_deref(),
            Some("pt-br-sms")
        );
        // A template limited to other countries is not used there.
        assert_eq!(
            chosen("fr-FR", Channel::Sms, "FR").as_deref(),
            Some("en-sms")
        );
        assert_eq!(
            chosen("fr-CA", Channel::Sms, "CA").as_deref(),
            Some("fr-sms-ca")
        );
        assert_eq!(
            chosen("de", Channel::Voice, "US").as_deref(),
            Some("en-voice")
        );
        let empty = Catalog::default();
        assert_eq!(
            empty.choose(Channel::Sms, &Locale::parse("en").unwrap(), None),
            None
        );
    }

    #[test]
    fn what_the_configuration_does_not_serve_is_a_route_failure() {
        let c = catalog();
        assert!(c.admits(Channel::Sms, Some("US")).is_ok());
        assert!(c.admits(Channel::Sms, None).is_ok());
        let far = c.admits(Channel::Sms, Some("ID")).unwrap_err();
        assert_eq!(far.code(), NOT_SERVED);
        assert!(far.is_route_failure());
        let sms_only = Catalog {
            channels: Some(vec![Channel::Sms]),
            ..catalog()
        };
        assert!(
            sms_only
                .admits(Channel::Voice, Some("US"))
                .unwrap_err()
                .is_route_failure()
        );
        let pending = Catalog {
            active: Some(false),
            ..catalog()
        };
        let err = pending.admits(Channel::Sms, Some("US")).unwrap_err();
        assert_eq!(err.code(), NOT_ACTIVE);
        assert!(err.is_route_failure());
        // Unread: the service decides.
        assert!(
            Catalog::default()
                .admits(Channel::Voice, Some("ID"))
                .is_ok()
        );
    }
}
