//! The route a message takes to the handset: the org's own origination
//! identities, or AWS End User Messaging Notify (AWS's identities and
//! pre-approved templates, no number to buy and no registration). A
//! deployment uses one or both, in an order ([`RoutePlan`]).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// `SendTextMessage`/`SendVoiceMessage` from the org's own numbers,
    /// sender ids or pools (`ORIGINATION_IDENTITIES`).
    Own,
    /// `SendNotifyTextMessage`/`SendNotifyVoiceMessage` through a Notify
    /// configuration.
    Notify,
}

impl Route {
    pub fn as_str(&self) -> &'static str {
        match self {
            Route::Own => "own",
            Route::Notify => "notify",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "own" => Some(Route::Own),
            "notify" => Some(Route::Notify),
            _ => None,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which routes a deployment sends by, the first one first: `own`,
/// `notify`, `own,notify` or `notify,own`. With two, a send the first route
/// cannot make (a route failure) goes by the second, and a resend goes by
/// the route the last code did not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutePlan {
    pub first: Route,
    pub second: Option<Route>,
}

impl Default for RoutePlan {
    fn default() -> Self {
        RoutePlan {
            first: Route::Own,
            second: None,
        }
    }
}

impl RoutePlan {
    pub fn parse(s: &str) -> Result<Self, String> {
        let routes: Vec<Option<Route>> = s.split(',').map(Route::parse).collect();
        match routes.as_slice() {
            [Some(first)] => Ok(RoutePlan {
                first: *first,
                second: None,
            }),
            [Some(first), Some(second)] if first != second => Ok(RoutePlan {
                first: *first,
                second: Some(*second),
            }),
            _ => Err("expected own, notify, own,notify or notify,own".into()),
        }
    }

    pub fn uses(&self, route: Route) -> bool {
        self.first == route || self.second == Some(route)
    }

    /// The routes in the order a send tries them. `avoid` (the route the
    /// last code to this person took, when they asked again) goes last.
    pub fn order(&self, avoid: Option<Route>) -> Vec<Route> {
        let mut routes = vec![self.first];
        routes.extend(self.second);
        if let Some(avoid) = avoid.filter(|_| routes.len() > 1) {
            routes.sort_by_key(|r| *r == avoid);
        }
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_order() {
        assert_eq!(RoutePlan::parse("own").unwrap(), RoutePlan::default());
        let both = RoutePlan::parse(" Notify , own").unwrap();
        assert_eq!(both.order(None), [Route::Notify, Route::Own]);
        assert_eq!(both.order(Some(Route::Notify)), [Route::Own, Route::Notify]);
        assert_eq!(both.order(Some(Route::Own)), [Route::Notify, Route::Own]);
        let one = RoutePlan::parse("notify").unwrap();
        assert_eq!(one.order(Some(Route::Notify)), [Route::Notify]);
        for bad in ["", "own,own", "sms", "own,notify,own", "own,"] {
            assert!(RoutePlan::parse(bad).is_err(), "{bad}");
        }
    }
}
