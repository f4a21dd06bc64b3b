//! Templates on DynamoDB: key `locale` (hash) + `channel` (range), with
//! `body`, `textType`, `voiceId` and `languageCode`. Lookups are cached per
//! instance for a TTL, misses included, so the fallback chain costs at most a
//! few `GetItem`s per locale per TTL rather than per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::classify;
use crate::domain::channel::Channel;
use crate::templates::{Template, TemplateError, TemplateStore, TextType, sort_templates};

type CacheEntry = (Instant, Option<Template>);

#[derive(Debug)]
pub struct DynamoTemplateStore {
    client: Client,
    table: String,
    ttl: Duration,
    cache: Mutex<HashMap<(String, Channel), CacheEntry>>,
}

fn attr(item: &HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

/// Reads one item; `None` if it is not a usable template.
pub fn template_from_item(item: &HashMap<String, AttributeValue>) -> Option<Template> {
    let channel = Channel::parse(&attr(item, "channel")?).ok()?;
    let text_type = match attr(item, "textType").as_deref() {
        Some("SSML") => TextType::Ssml,
        Some("TEXT") | None => TextType::Text,
        Some(_) => return None,
    };
    Some(Template {
        locale: attr(item, "locale")?,
        channel,
        body: attr(item, "body")?,
        text_type,
        voice_id: attr(item, "voiceId"),
        language_code: attr(item, "languageCode"),
    })
}

impl DynamoTemplateStore {
    pub fn new(client: Client, table: impl Into<String>, ttl: Duration) -> Self {
        DynamoTemplateStore {
            client,
            table: table.into(),
            ttl,
            cache: Mutex::default(),
        }
    }
}

#[async_trait]
impl TemplateStore for DynamoTemplateStore {
    /// Writes one template (for `telehook templates push`).
    async fn put(&self, t: &Template) -> Result<(), TemplateError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("locale", AttributeValue::S(t.locale.clone()))
            .item("channel", AttributeValue::S(t.channel.as_str().to_owned()))
            .item("body", AttributeValue::S(t.body.clone()))
            .item(
                "textType",
                AttributeValue::S(t.text_type.as_str().to_owned()),
            );
        if let Some(v) = &t.voice_id {
            req = req.item("voiceId", AttributeValue::S(v.clone()));
        }
        if let Some(l) = &t.language_code {
            req = req.item("languageCode", AttributeValue::S(l.clone()));
        }
        req.send()
            .await
            .map_err(|e| TemplateError::Store(classify(&e).detail))?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }

    /// Every template in the table (for `telehook templates list`).
    async fn list(&self) -> Result<Vec<Template>, TemplateError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| TemplateError::Store(classify(&e).detail))?;
            out.extend(page.items().iter().filter_map(template_from_item));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        sort_templates(&mut out);
        Ok(out)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn get(&self, locale: &str, channel: Channel) -> Result<Option<Template>, TemplateError> {
        let key = (locale.to_owned(), channel);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, t)| t.clone());
        if let Some(t) = cached {
            return Ok(t);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("locale", AttributeValue::S(locale.to_owned()))
            .key("channel", AttributeValue::S(channel.as_str().to_owned()))
            .send()
            .await
            .map_err(|e| TemplateError::Store(classify(&e).detail))?;
        let t = out.item().and_then(template_from_item);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (Instant::now(), t.clone()));
        Ok(t)
    }
}
