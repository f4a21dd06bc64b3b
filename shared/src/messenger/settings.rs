//! End User Messaging's settings: the routes (`ROUTES`), the own route's
//! origination identities by country, the Notify configuration, the
//! configuration set, the protect configuration and the price caps.

use std::collections::HashMap;

use crate::config::{ConfigError, Env, Problems, invalid};
use crate::domain::{Route, RoutePlan};

/// End User Messaging's controls: the routes, origination identities (the
/// own route's, required when it is used), the Notify configuration
/// (required when Notify is used), configuration set, protect
/// configuration, price caps.
pub(crate) fn eum_settings(env: &Env<'_>) -> Result<EumSettings, ConfigError> {
    let mut p = Problems::default();
    let routes = p.take(match env.opt("ROUTES") {
        None => Ok(RoutePlan::default()),
        Some(v) => RoutePlan::parse(&v).map_err(|reason| ConfigError::Invalid {
            var: "ROUTES",
            reason,
        }),
    });
    let uses = |route| routes.is_some_and(|r| r.uses(route));
    let origination = p.take(match env.opt("ORIGINATION_IDENTITIES") {
        None if !uses(Route::Own) => Ok(OriginationIdentities::default()),
        None => Err(ConfigError::Missing {
            var: "ORIGINATION_IDENTITIES",
        }),
        Some(v) => OriginationIdentities::parse(&v).map_err(|reason| ConfigError::Invalid {
            var: "ORIGINATION_IDENTITIES",
            reason,
        }),
    });
    let notify = p.take(match env.opt("NOTIFY_CONFIGURATION_ID") {
        None if uses(Route::Notify) => Err(ConfigError::Missing {
            var: "NOTIFY_CONFIGURATION_ID",
        }),
        None => Ok(None),
        Some(id) => Ok(Some(NotifySettings {
            configuration_id: id,
            configuration_set: env.opt("CONFIGURATION_SET_NAME"),
        })),
    });
    let price = |var: &'static str| -> Result<Option<String>, ConfigError> {
        match env.opt(var) {
            None => Ok(None),
            Some(v) if v.parse::<f64>().is_ok_and(|p| p > 0.0 && p.is_finite()) => Ok(Some(v)),
            Some(_) => Err(invalid(
                var,
                "expected a positive price in USD such as 0.10",
            )),
        }
    };
    let max_price = p.take(price("MAX_PRICE"));
    let max_price_per_minute = p.take(price("MAX_PRICE_PER_MINUTE"));
    let (
        Some(routes),
        Some(origination),
        Some(notify),
        Some(max_price),
        Some(max_price_per_minute),
    ) = (routes, origination, notify, max_price, max_price_per_minute)
    else {
        return Err(p.into_error());
    };
    Ok(EumSettings {
        routes,
        origination,
        notify,
        configuration_set: env.opt("CONFIGURATION_SET_NAME"),
        protect_configuration_id: env.opt("PROTECT_CONFIGURATION_ID"),
        max_price,
        max_price_per_minute,
    })
}

/// Origination identity (phone number, sender id, pool, or their ARNs) per
/// destination country, with a default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginationIdentities {
    default: Option<String>,
    by_region: HashMap<String, String>,
}

impl OriginationIdentities {
    /// Parses `{"default": "...", "US": "...", "CA": "..."}`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let map: HashMap<String, String> = serde_json::from_str(json)
            .map_err(|_| "expected a JSON object of strings".to_owned())?;
        let mut out = OriginationIdentities::default();
        for (k, v) in map {
            if v.trim().is_empty() {
                return Err(format!("empty identity for {k}"));
            }
            if k.eq_ignore_ascii_case("default") {
                out.default = Some(v);
            } else if k.len() == 2 && k.bytes().all(|b| b.is_ascii_alphabetic()) {
                out.by_region.insert(k.to_ascii_uppercase(), v);
            } else {
                return Err(format!("{k} is not an ISO country code or \"default\""));
            }
        }
        if out.default.is_none() && out.by_region.is_empty() {
            return Err("no identity given".into());
        }
        Ok(out)
    }

    pub fn for_region(&self, region: Option<&str>) -> Option<&str> {
        region
            .and_then(|r| self.by_region.get(r))
            .or(self.default.as_ref())
            .map(String::as_str)
    }
}

/// Provider controls from configuration.
#[derive(Debug, Clone, Default)]
pub struct EumSettings {
    /// Which routes, in which order (`ROUTES`, `own` unless set).
    pub routes: RoutePlan,
    /// The own route's identities (empty when only Notify is used).
    pub origination: OriginationIdentities,
    /// The Notify configuration, when Notify is used.
    pub notify: Option<NotifySettings>,
    pub configuration_set: Option<String>,
    pub protect_configuration_id: Option<String>,
    /// Price cap per SMS part, in USD, as the API takes it (`"0.10"`).
    pub max_price: Option<String>,
    /// Price cap per voice minute, in USD.
    pub max_price_per_minute: Option<String>,
}

/// The Notify route's configuration (`NOTIFY_CONFIGURATION_ID`, its id or
/// ARN) and the configuration set its events go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    pub configuration_id: String,
    pub configuration_set: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origination_by_country_with_default() {
        let o = OriginationIdentities::parse(
            r#"{"default":"pool-1","us":"+12065550100","CA":"+14165550100"}"#,
        )
        .unwrap();
        assert_eq!(o.for_region(Some("US")), Some("+12065550100"));
        assert_eq!(o.for_region(Some("CA")), Some("+14165550100"));
        assert_eq!(o.for_region(Some("DE")), Some("pool-1"));
        assert_eq!(o.for_region(None), Some("pool-1"));
        let o = OriginationIdentities::parse(r#"{"US":"+12065550100"}"#).unwrap();
        assert_eq!(o.for_region(Some("DE")), None);
        assert!(OriginationIdentities::parse("{}").is_err());
        assert!(OriginationIdentities::parse(r#"{"USA":"x"}"#).is_err());
        assert!(OriginationIdentities::parse("[]").is_err());
    }

    fn settings(vars: &[(&str, &str)]) -> Result<EumSettings, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        eum_settings(&Env(&|k| m.get(k).cloned()))
    }

    #[test]
    fn routes_decide_which_settings_are_required() {
        let own = settings(&[("ORIGINATION_IDENTITIES", r#"{"default":"+12065550100"}"#)]).unwrap();
        assert_eq!(own.routes, RoutePlan::default());
        assert_eq!(own.notify, None);
        let err = settings(&[]).unwrap_err();
        assert_eq!(err.vars(), ["ORIGINATION_IDENTITIES"]);
        let notify =
            settings(&[("ROUTES", "notify"), ("NOTIFY_CONFIGURATION_ID", "nc-1")]).unwrap();
        assert_eq!(notify.routes.first, Route::Notify);
        assert_eq!(
            notify.notify.map(|n| n.configuration_id).as_deref(),
            Some("nc-1")
        );
        let err = settings(&[("ROUTES", "notify,own")]).unwrap_err();
        assert_eq!(
            err.vars(),
            ["ORIGINATION_IDENTITIES", "NOTIFY_CONFIGURATION_ID"]
        );
        let err = settings(&[("ROUTES", "sms")]).unwrap_err();
        assert_eq!(err.vars(), ["ROUTES"]);
    }
}
