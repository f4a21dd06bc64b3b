//! End User Messaging's settings: origination identities by country, the
//! configuration set, the protect configuration and the price caps.

use std::collections::HashMap;

use crate::config::{ConfigError, Env, Problems, invalid};

/// End User Messaging's controls: origination identities, configuration
/// set, protect configuration, price caps.
pub(crate) fn eum_settings(env: &Env<'_>) -> Result<EumSettings, ConfigError> {
    let mut p = Problems::default();
    let origination = p.take(env.req("ORIGINATION_IDENTITIES").and_then(|v| {
        OriginationIdentities::parse(&v).map_err(|reason| ConfigError::Invalid {
            var: "ORIGINATION_IDENTITIES",
            reason,
        })
    }));
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
    let (Some(origination), Some(max_price), Some(max_price_per_minute)) =
        (origination, max_price, max_price_per_minute)
    else {
        return Err(p.into_error());
    };
    Ok(EumSettings {
        origination,
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
    pub origination: OriginationIdentities,
    pub configuration_set: Option<String>,
    pub protect_configuration_id: Option<String>,
    /// Price cap per SMS part, in USD, as the API takes it (`"0.10"`).
    pub max_price: Option<String>,
    /// Price cap per voice minute, in USD.
    pub max_price_per_minute: Option<String>,
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
}
