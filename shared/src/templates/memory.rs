//! A template store held in memory: for flow tests and local mode.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{Template, TemplateError, TemplateStore, sort_templates};
use crate::domain::Channel;

/// A template store held in memory: for flow tests and local mode.
#[derive(Debug, Default)]
pub struct InMemoryTemplateStore {
    templates: std::sync::RwLock<HashMap<(String, Channel), Template>>,
}

#[async_trait]
impl TemplateStore for InMemoryTemplateStore {
    async fn get(&self, locale: &str, channel: Channel) -> Result<Option<Template>, TemplateError> {
        let map = self.templates.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(&(locale.to_owned(), channel)).cloned())
    }

    async fn put(&self, t: &Template) -> Result<(), TemplateError> {
        self.templates
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((t.locale.clone(), t.channel), t.clone());
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Template>, TemplateError> {
        let map = self.templates.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Template> = map.values().cloned().collect();
        sort_templates(&mut out);
        Ok(out)
    }
}
