//! The ingress's settings: how it authenticates Okta's telephony hook
//! (OAuth 2.0 or a header secret) and event hook (a header secret), and the
//! defaults it reads a hook with.

use std::time::Duration;

use http::HeaderName;

use crate::config::{ConfigError, Env, Problems, SecretSetting, invalid, secret_setting};
use crate::domain::phone::Region;
use crate::okta::HookDefaults;

/// Everything the ingress needs.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    pub auth: AuthConfig,
    pub defaults: HookDefaults,
    /// The Okta event hook's header secret (`EVENT_HOOK_SECRET` or
    /// `EVENT_HOOK_SECRET_ARN`, header `EVENT_HOOK_HEADER_NAME`); `None`
    /// turns the event hook route off. Okta's event hooks only send a
    /// header (no OAuth), so this is its own secret in either auth mode.
    pub event_hook: Option<HeaderSecretConfig>,
}

#[derive(Debug, Clone)]
pub enum AuthConfig {
    OAuth(OAuthConfig),
    HeaderSecret(HeaderSecretConfig),
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub issuer: String,
    pub jwks_url: reqwest::Url,
    pub audience: String,
    pub client_ids: Vec<String>,
    pub required_scope: String,
    pub leeway: Duration,
    pub jwks_ttl: Duration,
    pub jwks_refresh_cooldown: Duration,
}

#[derive(Debug, Clone)]
pub struct HeaderSecretConfig {
    pub header: HeaderName,
    pub secret: SecretSetting,
}

/// Okta's own verifiers accept up to two minutes of clock skew.
const MAX_LEEWAY_SECS: u64 = 120;

impl IngressConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let mut p = Problems::default();
        let auth = p.take(
            match env
                .opt("AUTH_MODE")
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("oauth") => oauth(&env).map(AuthConfig::OAuth),
                Some("header") => header_secret(
                    &env,
                    "AUTH_HEADER_NAME",
                    "AUTH_HEADER_SECRET",
                    "AUTH_HEADER_SECRET_ARN",
                )
                .map(AuthConfig::HeaderSecret),
                Some(_) => Err(invalid("AUTH_MODE", "expected oauth or header")),
            },
        );
        let locale = p.take(env.default_locale());
        let region = p.take(match env.opt("DEFAULT_REGION") {
            None => "US"
                .parse::<Region>()
                .map_err(|_| invalid("DEFAULT_REGION", "built-in default")),
            Some(s) => s
                .parse::<Region>()
                .map_err(|_| invalid("DEFAULT_REGION", "not an ISO 3166 region code such as US")),
        });
        let otp_life = p.take(env.otp_life());
        let event_hook = if env.opt("EVENT_HOOK_SECRET").is_some()
            || env.opt("EVENT_HOOK_SECRET_ARN").is_some()
        {
            p.take(header_secret(
                &env,
                "EVENT_HOOK_HEADER_NAME",
                "EVENT_HOOK_SECRET",
                "EVENT_HOOK_SECRET_ARN",
            ))
        } else {
            None
        };
        let okta_sms_text =
            p.take(env.choice("SMS_TEXT", false, &[("templates", false), ("okta", true)]));
        let (Some(auth), Some(locale), Some(region), Some(otp_life), Some(okta_sms_text)) =
            (auth, locale, region, otp_life, okta_sms_text)
        else {
            return Err(p.into_error());
        };
        // A problem that leaves no value missing (a malformed event hook
        // secret) fails the start too, rather than turning the route off.
        if !p.is_empty() {
            return Err(p.into_error());
        }
        let mut defaults = HookDefaults::new(locale, region);
        defaults.otp_life = otp_life;
        defaults.okta_sms_text = okta_sms_text;
        Ok(IngressConfig {
            auth,
            defaults,
            event_hook,
        })
    }
}

/// Where Okta publishes an issuer's keys. A custom authorization server
/// (`https://{org}/oauth2/{id}`) serves them at `{issuer}/v1/keys`; the org
/// authorization server (issuer `https://{org}`, no path) at
/// `https://{org}/oauth2/v1/keys`. Both are fixed by Okta, so no discovery
/// request is needed at start; `OKTA_JWKS_URL` overrides.
fn default_jwks_url(issuer: &reqwest::Url) -> Result<reqwest::Url, ConfigError> {
    let base = issuer.as_str().trim_end_matches('/');
    let url = if issuer.path().trim_matches('/').is_empty() {
        format!("{base}/oauth2/v1/keys")
    } else {
        format!("{base}/v1/keys")
    };
    reqwest::Url::parse(&url).map_err(|_| invalid("OKTA_ISSUER", "not a URL"))
}

fn oauth(env: &Env<'_>) -> Result<OAuthConfig, ConfigError> {
    let mut p = Problems::default();
    let issuer = p.take(env.req("OKTA_ISSUER").and_then(|issuer| {
        let issuer = issuer.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&issuer).map_err(|_| invalid("OKTA_ISSUER", "not a URL"))?;
        check_transport("OKTA_ISSUER", &url)?;
        Ok((issuer, url))
    }));
    let jwks_url = match (env.opt("OKTA_JWKS_URL"), &issuer) {
        (Some(u), _) => p.take(
            reqwest::Url::parse(&u)
                .map_err(|_| invalid("OKTA_JWKS_URL", "not a URL"))
                .and_then(|url| check_transport("OKTA_JWKS_URL", &url).map(|()| url)),
        ),
        (None, Some((_, issuer_url))) => p.take(default_jwks_url(issuer_url)),
        (None, None) => None,
    };
    let client_ids = p.take(env.req("OKTA_CLIENT_IDS").and_then(|ids| {
        let ids: Vec<String> = ids
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if ids.is_empty() {
            Err(invalid("OKTA_CLIENT_IDS", "no client id listed"))
        } else {
            Ok(ids)
        }
    }));
    let leeway =
        p.take(env.secs_within("JWT_LEEWAY_SECONDS", 60, 0..=MAX_LEEWAY_SECS, "at most 120"));
    // Floors: a TTL or cool-down of 0 would fetch the issuer's keys on
    // every hook, or on every unknown `kid` an attacker sends.
    let jwks_ttl = p.take(env.secs_within(
        "JWKS_CACHE_TTL_SECONDS",
        3600,
        60..=86_400,
        "expected 60 to 86400 seconds",
    ));
    let jwks_refresh_cooldown = p.take(env.secs_within(
        "JWKS_REFRESH_COOLDOWN_SECONDS",
        30,
        5..=3600,
        "expected 5 to 3600 seconds",
    ));
    let required_scope = p.take(env.req("OKTA_REQUIRED_SCOPE"));
    let (
        Some((issuer, _)),
        Some(jwks_url),
        Some(client_ids),
        Some(leeway),
        Some(jwks_ttl),
        Some(jwks_refresh_cooldown),
        Some(required_scope),
    ) = (
        issuer,
        jwks_url,
        client_ids,
        leeway,
        jwks_ttl,
        jwks_refresh_cooldown,
        required_scope,
    )
    else {
        return Err(p.into_error());
    };
    Ok(OAuthConfig {
        issuer,
        jwks_url,
        audience: env
            .opt("OKTA_AUDIENCE")
            .unwrap_or_else(|| "api://default".to_owned()),
        client_ids,
        required_scope,
        leeway,
        jwks_ttl,
        jwks_refresh_cooldown,
    })
}

/// Keys must come over HTTPS. Plain HTTP is allowed to loopback only, for
/// the local issuer of `telehook serve` and for tests.
fn check_transport(var: &'static str, url: &reqwest::Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(invalid(
            var,
            "must be an https URL (http only for loopback)",
        )),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A header secret from `name_var` (the header, `Authorization` unless
/// set) and `var` or `arn_var` (the secret).
fn header_secret(
    env: &Env<'_>,
    name_var: &'static str,
    var: &'static str,
    arn_var: &'static str,
) -> Result<HeaderSecretConfig, ConfigError> {
    let mut p = Problems::default();
    let name = env
        .opt(name_var)
        .unwrap_or_else(|| "authorization".to_owned());
    let header = p.take(
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| invalid(name_var, "not a valid HTTP header name")),
    );
    let secret = p.take(secret_setting(env, var, arn_var));
    let (Some(header), Some(secret)) = (header, secret) else {
        return Err(p.into_error());
    };
    Ok(HeaderSecretConfig { header, secret })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<IngressConfig, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        IngressConfig::from_lookup(|k| m.get(k).cloned())
    }

    const OK: &[(&str, &str)] = &[
        ("OKTA_ISSUER", "https://example.okta.com/oauth2/default/"),
        ("OKTA_CLIENT_IDS", "0oa1, 0oa2"),
        ("OKTA_REQUIRED_SCOPE", "okta.telephony.hook"),
    ];

    #[test]
    fn oauth_defaults() {
        let c = cfg(OK).unwrap();
        let AuthConfig::OAuth(o) = c.auth else {
            panic!("oauth")
        };
        assert_eq!(o.issuer, "https://example.okta.com/oauth2/default");
        assert_eq!(
            o.jwks_url.as_str(),
            "https://example.okta.com/oauth2/default/v1/keys"
        );
        assert_eq!(o.audience, "api://default");
        assert_eq!(o.client_ids, vec!["0oa1", "0oa2"]);
        assert_eq!(c.defaults.locale.as_str(), "en");
        assert_eq!(c.defaults.region.as_str(), "US");
        assert_eq!(c.defaults.otp_life, Duration::from_secs(300));
        assert!(!c.defaults.okta_sms_text);
    }

    #[test]
    fn secrets_by_value_or_by_arn_not_both() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hook-AbCdEf";
        let base = [("AUTH_MODE", "header")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            cfg(&v)
        };
        let c = with(&[("AUTH_HEADER_SECRET_ARN", arn)]).unwrap();
        let AuthConfig::HeaderSecret(h) = c.auth else {
            panic!("header")
        };
        assert!(matches!(&h.secret, SecretSetting::Arn(a) if a == arn));
        assert!(
            !format!(
                "{:?}",
                SecretSetting::Value("0123456789abcdef-x".to_owned().into())
            )
            .contains("0123")
        );
        for (extra, var) in [
            (
                vec![
                    ("AUTH_HEADER_SECRET", "0123456789abcdef-x"),
                    ("AUTH_HEADER_SECRET_ARN", arn),
                ],
                "AUTH_HEADER_SECRET_ARN",
            ),
            (
                vec![("AUTH_HEADER_SECRET_ARN", "alias/x")],
                "AUTH_HEADER_SECRET_ARN",
            ),
            (vec![("AUTH_HEADER_SECRET", "short")], "AUTH_HEADER_SECRET"),
        ] {
            assert!(
                matches!(with(&extra), Err(ConfigError::Invalid { var: v, .. }) if v == var),
                "{extra:?}"
            );
        }
        assert_eq!(
            with(&[]).unwrap_err(),
            ConfigError::Missing {
                var: "AUTH_HEADER_SECRET"
            }
        );
    }

    #[test]
    fn org_and_custom_authorization_servers_have_their_own_key_urls() {
        for (issuer, keys) in [
            (
                "https://acme.okta.com",
                "https://acme.okta.com/oauth2/v1/keys",
            ),
            (
                "https://acme.okta.com/",
                "https://acme.okta.com/oauth2/v1/keys",
            ),
            (
                "https://acme.okta.com/oauth2/aus1abc",
                "https://acme.okta.com/oauth2/aus1abc/v1/keys",
            ),
            (
                "https://login.acme.example/oauth2/default",
                "https://login.acme.example/oauth2/default/v1/keys",
            ),
        ] {
            let mut v = OK.to_vec();
            v[0] = ("OKTA_ISSUER", issuer);
            let AuthConfig::OAuth(o) = cfg(&v).unwrap().auth else {
                panic!("oauth")
            };
            assert_eq!(o.jwks_url.as_str(), keys, "{issuer}");
            assert_eq!(o.issuer, issuer.trim_end_matches('/'));
        }
    }

    #[test]
    fn compatibility_settings() {
        let mut v = OK.to_vec();
        v.extend([("OTP_LIFE_SECONDS", "600"), ("SMS_TEXT", "okta")]);
        let c = cfg(&v).unwrap();
        assert_eq!(c.defaults.otp_life, Duration::from_secs(600));
        assert!(c.defaults.okta_sms_text);
        for (var, bad) in [("OTP_LIFE_SECONDS", "5"), ("SMS_TEXT", "both")] {
            let mut v = OK.to_vec();
            v.push((var, bad));
            assert!(matches!(cfg(&v), Err(ConfigError::Invalid { var: got, .. }) if got == var));
        }
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let err = cfg(&[
            ("AUTH_MODE", "header"),
            ("AUTH_HEADER_NAME", "bad header"),
            ("DEFAULT_REGION", "Narnia"),
            ("SMS_TEXT", "mine"),
        ])
        .unwrap_err();
        assert_eq!(
            err.vars(),
            [
                "AUTH_HEADER_NAME",
                "AUTH_HEADER_SECRET",
                "DEFAULT_REGION",
                "SMS_TEXT"
            ]
        );
        // Problems nest flat: a list inside a list is one list.
        let mut p = Problems::default();
        p.push(err);
        p.push(ConfigError::Missing { var: "AWS_REGION" });
        p.push(ConfigError::Missing { var: "AWS_REGION" });
        assert_eq!(p.into_error().problems().len(), 5);
        assert!(Problems::default().finish().is_ok());
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(
            cfg(&[]).unwrap_err().vars(),
            ["OKTA_ISSUER", "OKTA_CLIENT_IDS", "OKTA_REQUIRED_SCOPE"]
        );
        let mut v = OK.to_vec();
        v.retain(|(k, _)| *k != "OKTA_REQUIRED_SCOPE");
        assert_eq!(
            cfg(&v).unwrap_err(),
            ConfigError::Missing {
                var: "OKTA_REQUIRED_SCOPE"
            }
        );
        for (var, bad) in [
            ("OKTA_ISSUER", "http://example.okta.com/oauth2/default"),
            ("OKTA_JWKS_URL", "ftp://x"),
            ("JWT_LEEWAY_SECONDS", "600"),
            ("DEFAULT_LOCALE", "english!"),
            ("DEFAULT_REGION", "XX"),
            ("AUTH_MODE", "magic"),
            // A key fetch on every hook, or on every made-up `kid`.
            ("JWKS_CACHE_TTL_SECONDS", "0"),
            ("JWKS_CACHE_TTL_SECONDS", "59"),
            ("JWKS_REFRESH_COOLDOWN_SECONDS", "0"),
            ("JWKS_REFRESH_COOLDOWN_SECONDS", "4"),
        ] {
            let mut v = OK.to_vec();
            v.push((var, bad));
            let err = cfg(&v).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { var: got, .. } if got == var),
                "{var}: {err}"
            );
        }
    }

    #[test]
    fn a_bad_event_hook_secret_fails_the_start() {
        let mut v = OK.to_vec();
        v.push(("EVENT_HOOK_SECRET", "too-short"));
        assert_eq!(cfg(&v).unwrap_err().vars(), ["EVENT_HOOK_SECRET"]);
        let mut v = OK.to_vec();
        v.push(("EVENT_HOOK_SECRET", "long-enough-event-hook-secret"));
        assert!(cfg(&v).unwrap().event_hook.is_some());
    }

    #[test]
    fn loopback_http_is_allowed() {
        let mut v = OK.to_vec();
        v[0] = ("OKTA_ISSUER", "http://127.0.0.1:8080/oauth2/default");
        assert!(cfg(&v).is_ok());
    }

    #[test]
    fn header_mode_never_echoes_the_secret() {
        let c = cfg(&[
            ("AUTH_MODE", "header"),
            ("AUTH_HEADER_SECRET", "s3cr3t-s3cr3t-s3cr3t"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let err = cfg(&[("AUTH_MODE", "HEADER"), ("AUTH_HEADER_SECRET", "tiny-val")]).unwrap_err();
        assert!(!err.to_string().contains("tiny-val"), "{err}");
        assert_eq!(
            err,
            invalid("AUTH_HEADER_SECRET", "shorter than 16 characters")
        );
        assert_eq!(
            cfg(&[("AUTH_MODE", "header")]).unwrap_err(),
            ConfigError::Missing {
                var: "AUTH_HEADER_SECRET"
            }
        );
    }
}
