//! The routes a deployment sends by ([`RoutePlan`]), each with its
//! messenger. The flows pick the order per message (a route failure moves
//! on to the second route; a resend prefers the route the last code did
//! not take); this only holds the messengers.

use std::sync::Arc;

use super::Messenger;
use crate::domain::{Route, RoutePlan};

#[derive(Debug, Clone)]
pub struct Routes {
    plan: RoutePlan,
    first: Arc<dyn Messenger>,
    second: Option<Arc<dyn Messenger>>,
}

impl Routes {
    /// One route.
    pub fn one(route: Route, messenger: Arc<dyn Messenger>) -> Self {
        Routes {
            plan: RoutePlan {
                first: route,
                second: None,
            },
            first: messenger,
            second: None,
        }
    }

    /// A second route after the first one; replaces a second route given
    /// before. A route cannot be its own second route.
    pub fn then(mut self, route: Route, messenger: Arc<dyn Messenger>) -> Self {
        if route != self.plan.first {
            self.plan.second = Some(route);
            self.second = Some(messenger);
        }
        self
    }

    pub fn plan(&self) -> RoutePlan {
        self.plan
    }

    /// The messenger of `route`, if the deployment uses it.
    pub fn messenger(&self, route: Route) -> Option<&Arc<dyn Messenger>> {
        if route == self.plan.first {
            Some(&self.first)
        } else if Some(route) == self.plan.second {
            self.second.as_ref()
        } else {
            None
        }
    }

    /// The first route's messenger: message feedback goes through it (End
    /// User Messaging takes feedback for any message of the account).
    pub fn first(&self) -> &Arc<dyn Messenger> {
        &self.first
    }

    /// Warms every route's messenger (see [`Messenger::warm`]), giving up
    /// after `within`: the first send reads what is still missing.
    pub async fn warm(&self, within: std::time::Duration) {
        let all = async {
            self.first.warm().await;
            if let Some(second) = &self.second {
                second.warm().await;
            }
        };
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("a route was not ready at start-up; its first send reads the rest");
        }
    }

    /// Every messenger wrapped by `wrap` (fault injection), each told its
    /// route.
    pub fn map(self, wrap: impl Fn(Route, Arc<dyn Messenger>) -> Arc<dyn Messenger>) -> Self {
        Routes {
            plan: self.plan,
            first: wrap(self.plan.first, self.first),
            second: match (self.plan.second, self.second) {
                (Some(route), Some(m)) => Some(wrap(route, m)),
                _ => None,
            },
        }
    }
}
