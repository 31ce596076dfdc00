//! A view of a request that is safe to log: every secret replaced by `[redacted]`.

use std::fmt;

use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, PROXY_AUTHORIZATION};
use serde_json::Value;

use crate::wire::operation::HttpRequest;

const REDACTED: &str = "[redacted]";
/// Form fields that hold credentials.
const SECRET_FORM_FIELDS: [&str; 3] = ["client_secret", "client_assertion", "assertion"];
/// Fields of a response's JSON body that hold a token: what an error built from that
/// body must never quote, even where its message repeats them.
const SECRET_BODY_FIELDS: [&str; 5] = [
    "token",
    "access_token",
    "accessToken",
    "refresh_token",
    "id_token",
];
/// JSON fields that hold credentials, at any depth.
const SECRET_JSON_FIELDS: [&str; 8] = [
    "identityBlob",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "assertion",
];

/// Shows a request's method, URI, headers and body with the bearer token, the client
/// secret and identity blobs replaced by `[redacted]`.
///
/// ```
/// # use pbi_embed_core::Redacted;
/// let request = pbi_embed_core::http::Request::post("https://api.powerbi.com/v1.0/myorg/GenerateToken")
///     .header("Authorization", "Bearer eyJ0")
///     .body(Vec::new())?;
/// assert!(!Redacted(&request).to_string().contains("eyJ0"));
/// # Ok::<(), pbi_embed_core::http::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Redacted<'a>(pub &'a HttpRequest);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let request = self.0;
        write!(f, "{} {}", request.method(), request.uri())?;
        for (name, value) in request.headers() {
            let secret = value.is_sensitive() || [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE].contains(name);
            match (secret, value.to_str()) {
                (false, Ok(text)) => write!(f, "\n{name}: {text}")?,
                (false, Err(_)) => write!(f, "\n{name}: [{} bytes]", value.len())?,
                (true, _) => write!(f, "\n{name}: {REDACTED}")?,
            }
        }
        let body = request.body();
        if body.is_empty() {
            return Ok(());
        }
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type.starts_with("application/x-www-form-urlencoded") {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in url::form_urlencoded::parse(body) {
                let shown = if SECRET_FORM_FIELDS.contains(&key.as_ref()) {
                    REDACTED
                } else {
                    &value
                };
                form.append_pair(&key, shown);
            }
            write!(f, "\n\n{}", form.finish())
        } else if let Ok(mut json) = serde_json::from_slice::<Value>(body) {
            redact_json(&mut json);
            write!(f, "\n\n{json}")
        } else {
            write!(f, "\n\n[{} bytes]", body.len())
        }
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A JSON body with its credential fields replaced by `[redacted]`, as text; `None` when
/// the body is not JSON.
pub(crate) fn redacted_json(body: &[u8]) -> Option<String> {
    let mut json = serde_json::from_slice::<Value>(body).ok()?;
    redact_json(&mut json);
    Some(json.to_string())
}

/// Replaces every credential field by `[redacted]`, and every copy of a credential's
/// text elsewhere in the document (a proxy's message quoting the token, say).
fn redact_json(value: &mut Value) {
    let mut secrets = Vec::new();
    redact_fields(value, &mut secrets);
    // Short values could match ordinary text by accident; they are no copy worth hiding.
    secrets.retain(|secret| secret.len() >= 8);
    if !secrets.is_empty() {
        scrub_copies(value, &secrets);
    }
}

fn redact_fields(value: &mut Value, secrets: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if SECRET_JSON_FIELDS.contains(&key.as_str()) {
                    collect_strings(inner, secrets);
                    *inner = Value::String(REDACTED.to_owned());
                } else {
                    redact_fields(inner, secrets);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_fields(item, secrets)),
        _ => {}
    }
}

fn collect_strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(text) => into.push(text.clone()),
        Value::Object(map) => map.values().for_each(|inner| collect_strings(inner, into)),
        Value::Array(items) => items.iter().for_each(|inner| collect_strings(inner, into)),
        _ => {}
    }
}

fn scrub_copies(value: &mut Value, secrets: &[String]) {
    let scrub = |text: &str| {
        secrets.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), REDACTED)
        })
    };
    match value {
        Value::String(text) => *text = scrub(text),
        Value::Object(map) => {
            if map
                .keys()
                .any(|key| secrets.iter().any(|s| key.contains(s.as_str())))
            {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, inner)| (scrub(&key), inner))
                    .collect();
            }
            map.values_mut().for_each(|inner| scrub_copies(inner, secrets));
        }
        Value::Array(items) => items.iter_mut().for_each(|inner| scrub_copies(inner, secrets)),
        _ => {}
    }
}

/// The shortest secret removed from text: shorter ones would blank ordinary words.
const MIN_SECRET_CHARS: usize = 4;

/// Secret values a request carried (its bearer token, an identity header, a client secret
/// or assertion in its form) and those a credential holds, to remove from whatever text
/// an upstream sends back: an endpoint that echoes a request must not put a secret into
/// an error.
#[derive(Default)]
pub(crate) struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// The secrets `request` carries: every header marked sensitive (the bearer token
    /// without its `Bearer ` prefix) and the credentials of a form body.
    pub(crate) fn of_request(request: &HttpRequest) -> Self {
        let mut secrets = Self::default();
        for value in request.headers().values().filter(|v| v.is_sensitive()) {
            if let Ok(text) = value.to_str() {
                secrets.add(text.strip_prefix("Bearer ").unwrap_or(text));
            }
        }
        let is_form = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            for (name, value) in url::form_urlencoded::parse(request.body()) {
                if SECRET_FORM_FIELDS.contains(&name.as_ref()) {
                    secrets.add(&value);
                }
            }
        }
        secrets
    }

    /// The tokens a response's JSON body carries at its top level (an error status with
    /// a token-shaped body): an error quoting the body's other fields must not repeat them.
    pub(crate) fn of_body(body: Option<&serde_json::Map<String, Value>>) -> Self {
        let mut secrets = Self::default();
        for field in SECRET_BODY_FIELDS {
            if let Some(Value::String(token)) = body.and_then(|b| b.get(field)) {
                secrets.add(token);
            }
        }
        secrets
    }

    /// Adds a secret.
    pub(crate) fn add(&mut self, secret: &str) {
        if secret.chars().count() >= MIN_SECRET_CHARS && !self.values.iter().any(|v| v == secret) {
            self.values.push(secret.to_owned());
        }
    }

    /// Replaces every secret in `text`, as it is and as a form or URL would encode it.
    /// Should a replacement itself form a secret again with the text around it (a secret
    /// that ends the way the marker does), the whole text becomes the marker.
    pub(crate) fn scrub(&self, text: &mut String) {
        let forms: Vec<std::borrow::Cow<'_, str>> = self
            .values
            .iter()
            .flat_map(|secret| {
                let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                [secret.as_str().into(), encoded.into()]
            })
            .collect();
        for form in &forms {
            if text.contains(&**form) {
                *text = text.replace(&**form, REDACTED);
            }
        }
        if forms.iter().any(|form| text.contains(&**form)) {
            REDACTED.clone_into(text);
        }
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz smoke: a 547 whose body holds a token and a message repeating it.
    #[test]
    fn an_error_never_quotes_a_token_its_own_body_carries() {
        let body = br#"{"token":"dC2Wt66EVt","message":"9dC2Wt66EVt","access_token":"eyJ0.abcdef"}"#;
        let response = http::Response::builder().status(547).body(body.to_vec()).unwrap();
        let shown = |e: crate::wire::error::ExchangeError| format!("{e} {e:?}");
        let api = shown(crate::wire::response::api_error(&response));
        assert!(!api.contains("dC2Wt66EVt") && api.contains(REDACTED), "{api}");
        let body =
            br#"{"error":"x","error_description":"got eyJ0.abcdef back","access_token":"eyJ0.abcdef"}"#;
        let response = http::Response::builder().status(400).body(body.to_vec()).unwrap();
        let entra = shown(crate::auth::entra::entra_error(&response));
        assert!(
            !entra.contains("eyJ0.abcdef") && entra.contains(REDACTED),
            "{entra}"
        );
    }

    #[test]
    fn a_replacement_that_forms_the_secret_again_blanks_the_text() {
        let mut secrets = Secrets::default();
        secrets.add("ted]XYZW");
        let mut text = "ted]XYZWXYZW".to_owned();
        secrets.scrub(&mut text);
        assert_eq!(text, REDACTED);
        let mut text = "keep this, drop ted]XYZW".to_owned();
        secrets.scrub(&mut text);
        assert_eq!(text, "keep this, drop [redacted]");
    }

    #[test]
    fn json_and_form_bodies() {
        let request = http::Request::post("https://x.example/t")
            .header(CONTENT_TYPE, "application/json")
            .body(br#"{"identities":[{"username":"u","identityBlob":{"value":"BLOB"}}],"datasourceIdentities":[{"identityBlob":"BLOB2"}]}"#.to_vec())
            .unwrap();
        let shown = Redacted(&request).to_string();
        assert!(!shown.contains("BLOB"), "{shown}");
        assert!(shown.contains("\"username\":\"u\""), "{shown}");

        let request = http::Request::post("https://x.example/t")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(b"client_id=abc&client_secret=S%26CRET&grant_type=client_credentials".to_vec())
            .unwrap();
        let shown = Redacted(&request).to_string();
        assert!(
            !shown.contains("S%26CRET") && !shown.contains("S&CRET"),
            "{shown}"
        );
        assert!(shown.contains("client_id=abc"), "{shown}");
    }

    #[test]
    fn copies_of_a_credential_elsewhere_are_redacted_too() {
        let body =
            br#"{"token":"H4.eyJsecret","note":"echo H4.eyJsecret","H4.eyJsecret":1,"tokenId":"id-1"}"#;
        let shown = redacted_json(body).unwrap();
        assert!(!shown.contains("H4.eyJsecret"), "{shown}");
        assert!(shown.contains(r#""note":"echo [redacted]""#), "{shown}");
        assert!(shown.contains(r#""tokenId":"id-1""#), "{shown}");
    }
}
