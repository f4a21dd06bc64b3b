//! A template store held in memory: for flow tests and local mode.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{Template, TemplateError, TemplateStore};
use crate::domain::Channel;

/// A template store held in memory: for flow tests and local mode.
#[derive(Debug, Default)]
pub struct InMemoryTemplateStore {
    templates: std::sync::RwLock<HashMap<(String, Channel), Template>>,
}

impl InMemoryTemplateStore {
    pub fn put(&self, t: Template) {
        self.templates
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((t.locale.clone(), t.channel), t);
    }
}

#[async_trait]
impl TemplateStore for InMemoryTemplateStore {
    async fn get(&self, locale: &str, channel: Channel) -> Result<Option<Template>, TemplateError> {
        let map = self.templates.read().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(&(locale.to_owned(), channel)).cloned())
    }
}
