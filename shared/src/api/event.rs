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
//!
//! Every header is checked, but only those the handler reads (its
//! credentials, the event hook's) are kept: API Gateway passes a dozen or
//! more (its own, CloudFront's, the client's), and copying each into a
//! header map cost more than the rest of the event.

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
    /// The typed event, keeping the headers `reads` names.
    pub fn from_event(event: &'a ApiGatewayProxyRequest, reads: impl Fn(&str) -> bool) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in &event.headers {
            if reads(name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in &event.multi_value_headers {
            if reads(name.as_str()) {
                add_missing(&mut headers, name, value);
            }
        }
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

    /// The Lambda event's JSON text, keeping the headers `reads` names; an
    /// error when it is not a proxy event.
    pub fn from_json(
        text: &'a str,
        reads: impl Fn(&str) -> bool,
    ) -> Result<Self, serde_json::Error> {
        let wire: WireEvent<'a> = serde_json::from_str(text)?;
        let mut headers = wire.headers.kept(&reads)?;
        for (name, value) in &wire.multi_value_headers.kept(&reads)? {
            add_missing(&mut headers, name, value);
        }
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

/// Adds a multi-value header's value when the single-value map does not
/// already hold it.
fn add_missing(headers: &mut HeaderMap, name: &HeaderName, value: &HeaderValue) {
    let present = headers.get_all(name).iter().any(|v| v == value);
    if !present {
        headers.append(name.clone(), value.clone());
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
    #[serde(default, borrow)]
    headers: Headers<'a>,
    #[serde(default, borrow)]
    multi_value_headers: Headers<'a>,
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
/// each name may carry a string or a list of strings; `null` is none. Every
/// name and value is checked as the typed event checks them, and kept as
/// written (borrowed from the text where it can be) until the handler's
/// are picked ([`Headers::kept`]).
#[derive(Default)]
struct Headers<'a>(Vec<(Cow<'a, str>, OneOrMany<'a>)>);

impl Headers<'_> {
    /// The headers `reads` names, by the typed event's rules: a later
    /// single value replaces, list values add.
    fn kept(&self, reads: impl Fn(&str) -> bool) -> Result<HeaderMap, serde_json::Error> {
        let mut map = HeaderMap::new();
        for (name, values) in self.0.iter().filter(|(n, _)| reads(n)) {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| de::Error::custom("not an HTTP header name"))?;
            match values {
                OneOrMany::One(v) => {
                    map.insert(&name, header_value(v)?);
                }
                OneOrMany::Many(all) => {
                    for v in all {
                        map.append(&name, header_value(v)?);
                    }
                }
            }
        }
        Ok(map)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Headers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(HeadersVisitor)
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = Headers<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of header names to a string or a list of strings")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Headers::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Headers::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut access: M) -> Result<Self::Value, M::Error> {
        let mut all = Vec::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(Text(name)) = access.next_key()? {
            if !is_header_name(name.as_bytes()) {
                return Err(de::Error::custom("not an HTTP header name"));
            }
            let values = access.next_value::<OneOrMany<'_>>()?;
            let ok = match &values {
                OneOrMany::One(v) => is_header_value(v),
                OneOrMany::Many(vs) => vs.iter().all(|v| is_header_value(v)),
            };
            if !ok {
                return Err(de::Error::custom("not an HTTP header value"));
            }
            all.push((name, values));
        }
        Ok(Headers(all))
    }
}

/// What `HeaderName::from_bytes` accepts, without building the name: one
/// to `u16::MAX` token characters (letters of either case, digits and
/// ``!#$%&'*+-.^_`|~``).
fn is_header_name(name: &[u8]) -> bool {
    const TOKEN: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                );
            b += 1;
        }
        t
    };
    (1..=usize::from(u16::MAX)).contains(&name.len()) && name.iter().all(|&b| TOKEN[usize::from(b)])
}

/// What `HeaderValue::from_str` accepts, without copying the value: no
/// control character but the tab. Every byte is looked at, without an
/// early return, so the loop vectorises (a bearer token is a kilobyte).
fn is_header_value(value: &str) -> bool {
    let mut bad = false;
    for b in value.bytes() {
        bad |= !((b >= 32 && b != 127) || b == b'\t');
    }
    !bad
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
        let ours = Incoming::from_json(&text, |_| true).unwrap();
        let theirs = Incoming::from_event(&typed, |_| true);
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
        let e = Incoming::from_json(&text, |_| true).unwrap();
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
            assert!(Incoming::from_json(&text, |_| true).is_err(), "{text}");
            // Checked whether or not the handler reads it.
            assert!(Incoming::from_json(&text, |_| false).is_err(), "{text}");
        }
        assert!(Incoming::from_json(&event(""), |_| true).is_ok());
    }

    #[test]
    fn only_the_headers_the_handler_reads_are_kept() {
        let text = event(
            r#","headers":{"Authorization":"Bearer a","X-Amzn-Trace-Id":"Root=1","Via":"2.0 x"},"multiValueHeaders":{"authorization":["Bearer a","Bearer b"],"via":["2.0 x"]}"#,
        );
        let e = Incoming::from_json(&text, |n| n.eq_ignore_ascii_case("authorization")).unwrap();
        assert_eq!(e.headers.len(), 2);
        let all: Vec<_> = e.headers.get_all("authorization").iter().collect();
        assert_eq!(all, ["Bearer a", "Bearer b"]);
        let typed: ApiGatewayProxyRequest = serde_json::from_str(&text).unwrap();
        let theirs = Incoming::from_event(&typed, |n| n.eq_ignore_ascii_case("authorization"));
        assert_eq!(e.headers, theirs.headers);
    }

    #[test]
    fn header_checks_agree_with_the_http_crate() {
        for b in 0..=u8::MAX {
            assert_eq!(
                is_header_name(&[b]),
                HeaderName::from_bytes(&[b]).is_ok(),
                "name byte {b}"
            );
            let v = [b'a', b, b'z'];
            if let Ok(text) = std::str::from_utf8(&v) {
                assert_eq!(
                    is_header_value(text),
                    HeaderValue::from_str(text).is_ok(),
                    "value byte {b}"
                );
            }
        }
        assert!(is_header_value("é, \tok"));
        assert!(HeaderValue::from_str("é, \tok").is_ok());
        for len in [0, 1, 64, 65, 65_535, 65_536] {
            let name = "x".repeat(len);
            assert_eq!(
                is_header_name(name.as_bytes()),
                HeaderName::from_bytes(name.as_bytes()).is_ok(),
                "length {len}"
            );
        }
    }
}
