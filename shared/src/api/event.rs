//! The request the ingress handler reads: the parts of an API Gateway REST
//! proxy event it uses ([`Incoming`]), taken from the typed event (local
//! mode, tests) or read straight from the Lambda event's text
//! ([`Incoming::from_json`]).
//!
//! Why its own reader: the SDK's typed event keeps every field it does not
//! name in a flattened map, which makes serde buffer the whole event before
//! it reads a single field, and builds the identity, authorizer and query
//! maps the handler never looks at. Here the fields the handler uses are
//! read in one pass, borrowing from the event's text where no escapes
//! forbid it, and the rest is skipped. What the typed event refused is
//! refused here too: no `httpMethod` (at the top and in `requestContext`),
//! a method that is not an HTTP token, a header name or value HTTP does not
//! allow.

use std::borrow::Cow;
use std::fmt;

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::json::{OneOrMany, Text};

/// One hook or event-hook call, as the handler sees it.
#[derive(Debug)]
pub(super) struct Incoming<'a> {
    pub method: Method,
    pub path: Option<Cow<'a, str>>,
    pub resource: Option<Cow<'a, str>>,
    /// `headers` and `multiValueHeaders` together. `HeaderMap` keys are
    /// case-insensitive, which is what makes `AUTHORIZATION` and
    /// `authorization` the same header.
    pub headers: HeaderMap,
    pub body: Option<Cow<'a, str>>,
    pub is_base64_encoded: bool,
    pub request_id: Cow<'a, str>,
}

impl<'a> Incoming<'a> {
    pub fn from_event(event: &'a ApiGatewayProxyRequest) -> Self {
        let mut headers = event.headers.clone();
        merge(&mut headers, &event.multi_value_headers);
        Incoming {
            method: event.http_method.clone(),
            path: event.path.as_deref().map(Cow::Borrowed),
            resource: event.resource.as_deref().map(Cow::Borrowed),
            headers,
            body: event.body.as_deref().map(Cow::Borrowed),
            is_base64_encoded: event.is_base64_encoded,
            request_id: Cow::Borrowed(event.request_context.request_id.as_deref().unwrap_or("")),
        }
    }

    /// The Lambda event's JSON text; an error when it is not a proxy event.
    pub fn from_json(text: &'a str) -> Result<Self, serde_json::Error> {
        let wire: WireEvent<'a> = serde_json::from_str(text)?;
        let mut headers = wire.headers.0;
        merge(&mut headers, &wire.multi_value_headers.0);
        Ok(Incoming {
            method: wire.http_method.0,
            path: wire.path.map(|p| p.0),
            resource: wire.resource.map(|r| r.0),
            headers,
            body: wire.body.map(|b| b.0),
            is_base64_encoded: wire.is_base64_encoded.unwrap_or(false),
            request_id: wire
                .request_context
                .request_id
                .map_or(Cow::Borrowed(""), |r| r.0),
        })
    }
}

/// Adds the multi-value headers a single-value map does not already hold.
fn merge(headers: &mut HeaderMap, multi: &HeaderMap) {
    for (name, value) in multi {
        let present = headers.get_all(name).iter().any(|v| v == value);
        if !present {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// The fields of the proxy event the handler uses; serde skips the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent<'a> {
    #[serde(default, borrow)]
    resource: Option<Text<'a>>,
    #[serde(default, borrow)]
    path: Option<Text<'a>>,
    http_method: HttpMethod,
    #[serde(default)]
    headers: Headers,
    #[serde(default)]
    multi_value_headers: Headers,
    #[serde(default, borrow)]
    body: Option<Text<'a>>,
    #[serde(default)]
    is_base64_encoded: Option<bool>,
    #[serde(borrow)]
    request_context: WireContext<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireContext<'a> {
    #[serde(default, borrow)]
    request_id: Option<Text<'a>>,
    #[allow(dead_code)] // Required, as by the typed event; not used.
    http_method: HttpMethod,
}

/// An HTTP method, any token (as the typed event takes it).
struct HttpMethod(Method);

impl<'de> Deserialize<'de> for HttpMethod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(d)?;
        Method::from_bytes(text.0.as_bytes())
            .map(HttpMethod)
            .map_err(|_| de::Error::custom("not an HTTP method"))
    }
}

/// `headers` (one value a name) or `multiValueHeaders` (a list a name):
/// each name may carry a string or a list of strings; `null` is none. The
/// typed event's rules: a later single value replaces, list values add.
#[derive(Default)]
struct Headers(HeaderMap);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(HeadersVisitor)
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = Headers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of header names to a string or a list of strings")
    }

    fn visit_none<E: de::Error>(self) -> Result<Headers, E> {
        Ok(Headers::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Headers, E> {
        Ok(Headers::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Headers, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut access: M) -> Result<Headers, M::Error> {
        let mut map = HeaderMap::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(Text(name)) = access.next_key()? {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| de::Error::custom("not an HTTP header name"))?;
            match access.next_value::<OneOrMany<'_>>()? {
                OneOrMany::One(v) => {
                    map.insert(name, header_value(&v)?);
                }
                OneOrMany::Many(all) => {
                    for v in all {
                        map.append(&name, header_value(&v)?);
                    }
                }
            }
        }
        Ok(Headers(map))
    }
}

fn header_value<E: de::Error>(v: &str) -> Result<HeaderValue, E> {
    HeaderValue::from_str(v).map_err(|_| E::custom("not an HTTP header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(extra: &str) -> String {
        format!(
            r#"{{"httpMethod":"POST","requestContext":{{"httpMethod":"POST","requestId":"r-1"}}{extra}}}"#
        )
    }

    #[test]
    fn reads_what_the_typed_event_reads() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/ingress-sms.json"
        ))
        .unwrap();
        let typed: ApiGatewayProxyRequest = serde_json::from_str(&text).unwrap();
        let ours = Incoming::from_json(&text).unwrap();
        let theirs = Incoming::from_event(&typed);
        assert_eq!(ours.method, theirs.method);
        assert_eq!(ours.path, theirs.path);
        assert_eq!(ours.resource, theirs.resource);
        assert_eq!(ours.headers, theirs.headers);
        assert_eq!(ours.body, theirs.body);
        assert_eq!(ours.is_base64_encoded, theirs.is_base64_encoded);
        assert_eq!(ours.request_id, theirs.request_id);
        assert!(ours.headers.contains_key("authorization"));
    }

    #[test]
    fn headers_single_and_multi_merge_and_escapes_are_read() {
        let text = event(
            r#","headers":{"X-A":"1"},"multiValueHeaders":{"x-a":["1","2"],"X-C":["3"]},"body":"{\"k\":\"v\"}","isBase64Encoded":null"#,
        );
        let e = Incoming::from_json(&text).unwrap();
        let all: Vec<_> = e.headers.get_all("x-a").iter().collect();
        assert_eq!(all, ["1", "2"]);
        assert_eq!(e.headers["x-c"], "3");
        assert_eq!(e.body.as_deref(), Some(r#"{"k":"v"}"#));
        assert!(!e.is_base64_encoded);
        assert_eq!(e.request_id, "r-1");
    }

    #[test]
    fn what_is_not_a_proxy_event_is_refused() {
        for text in [
            "null".to_owned(),
            "[1,2]".to_owned(),
            r#"{"foo":1}"#.to_owned(),
            r#"{"httpMethod":5,"requestContext":{"httpMethod":"POST"}}"#.to_owned(),
            r#"{"httpMethod":"POST"}"#.to_owned(),
            r#"{"httpMethod":"PO ST","requestContext":{"httpMethod":"POST"}}"#.to_owned(),
            r#"{"httpMethod":"POST","requestContext":{}}"#.to_owned(),
            event(r#","headers":{"bad name":"x"}"#),
            event(r#","headers":{"x":"line\nbreak"}"#),
            event(r#","headers":{"x":5}"#),
            event(r#","headers":{"x":null}"#),
            event(r#","body":5"#),
        ] {
            assert!(Incoming::from_json(&text).is_err(), "{text}");
        }
        assert!(Incoming::from_json(&event("")).is_ok());
    }
}
