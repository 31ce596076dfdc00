//! Reading responses: status, headers and bodies from an untrusted server, parsed totally.
//!
//! Nothing here panics on any input, and nothing quotes a successful body.

use crate::wire::redact::Secrets;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Response};
use serde_json::{Map, Value};

use crate::wire::error::{self, ApiError, DecodeError, ExchangeError, PbiError, PbiErrorDetail};
use crate::wire::retry_after::RetryAfter;

/// The longest request id kept from a header.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id of a response: Power BI's `RequestId`, else `x-ms-request-id`.
/// Values that are not short, visible ASCII are ignored.
#[must_use]
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    ["requestid", "x-ms-request-id"].into_iter().find_map(|name| {
        let value = headers.get(name)?.to_str().ok()?.trim();
        let ok = !value.is_empty()
            && value.len() <= MAX_REQUEST_ID_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| value.to_owned())
    })
}

/// Whether a `Content-Type` header value names JSON (`application/json`, `…+json`).
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence
                .get(essence.len() - 5..)
                .is_some_and(|t| t.eq_ignore_ascii_case("+json")))
}

/// Checks that a success response is JSON (or says nothing of its type).
pub(crate) fn check_json<B>(response: &Response<B>) -> Result<(), String> {
    match response.headers().get(CONTENT_TYPE) {
        None => Ok(()),
        Some(value) => match value.to_str() {
            Ok(text) if is_json_media_type(text) => Ok(()),
            Ok(text) => Err(format!(
                "expected a JSON body, got Content-Type {:?}",
                error::sanitize(text, 64)
            )),
            Err(_) => Err("the Content-Type header is not readable text".to_owned()),
        },
    }
}

/// Parses a Power BI response of any status: a 2xx body with `parse`, anything else as
/// the [`ExchangeError::Api`] it means.
///
/// The body is parsed first, and the `Content-Type` is only read to explain a body that
/// does not parse (an HTML page says more as "got Content-Type text/html" than as a JSON
/// syntax error); a success answer is not held to its header.
pub(crate) fn parse_success<B: AsRef<[u8]>, T>(
    response: &Response<B>,
    what: &'static str,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, ExchangeError> {
    if !response.status().is_success() {
        return Err(api_error(response));
    }
    parse(response.body().as_ref()).map_err(|reason| {
        let reason = check_json(response).err().unwrap_or(reason);
        decode_error(what, response, reason)
    })
}

/// An [`ExchangeError::Decode`] for a response of `what`.
pub(crate) fn decode_error<B>(what: &'static str, response: &Response<B>, reason: String) -> ExchangeError {
    ExchangeError::Decode(Box::new(DecodeError {
        what,
        status: response.status(),
        reason,
        request_id: request_id(response.headers()),
    }))
}

/// Parses a Power BI error response of any shape into an [`ExchangeError::Api`].
#[must_use]
pub(crate) fn api_error<B: AsRef<[u8]>>(response: &Response<B>) -> ExchangeError {
    let headers = response.headers();
    let body = response.body().as_ref();
    let mut error = ApiError {
        status: response.status(),
        code: None,
        message: None,
        pbi_error: None,
        request_id: request_id(headers),
        retry_after: RetryAfter::from_headers(headers),
        location: response
            .status()
            .is_redirection()
            .then(|| location(headers))
            .flatten(),
        body_snippet: None,
    };
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let object = parsed.as_ref().and_then(Value::as_object);
    match object.and_then(|o| o.get("error")) {
        Some(Value::Object(inner)) => {
            error.code = text(inner, "code");
            error.message = text(inner, "message");
            error.pbi_error = inner.get("pbi.error").and_then(Value::as_object).map(pbi_error);
            if error.code.is_none() {
                error.code = error.pbi_error.as_ref().and_then(|p| p.code.clone());
            }
        }
        // Some gateways answer `{"error": "text"}` or `{"message": "..."}`.
        Some(Value::String(code)) => error.code = Some(error::service_text(code)),
        _ => {}
    }
    if error.message.is_none() {
        error.message = object.and_then(|o| text(o, "message").or_else(|| text(o, "Message")));
    }
    if error.code.is_none() && error.message.is_none() {
        error.body_snippet = error::snippet(body);
    }
    ExchangeError::Api(Box::new(error)).redacted(&Secrets::of_body(object))
}

/// The redirect target, for the error message: scheme, host and path only.
fn location(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(LOCATION)?.to_str().ok()?;
    let url = url::Url::parse(value).ok()?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let shown = format!("{}://{}{port}{}", url.scheme(), url.host_str()?, url.path());
    Some(error::sanitize(&shown, 200))
}

/// `error["pbi.error"]`.
fn pbi_error(object: &Map<String, Value>) -> PbiError {
    let parameters = object
        .get("parameters")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .take(64)
                .map(|(k, v)| (error::service_text(k), scalar_text(v).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let details = object
        .get("details")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .take(64)
                .filter_map(Value::as_object)
                .map(|d| {
                    let detail = d.get("detail").and_then(Value::as_object);
                    PbiErrorDetail {
                        code: text(d, "code"),
                        detail_type: detail.and_then(|x| x.get("type")).and_then(Value::as_i64),
                        value: detail.and_then(|x| x.get("value")).and_then(scalar_text),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    PbiError {
        code: text(object, "code"),
        parameters,
        details,
        exception_culprit: object.get("exceptionCulprit").and_then(Value::as_i64),
    }
}

/// A string field, sanitized for printing.
fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(error::service_text)
        .filter(|s| !s.is_empty())
}

/// A string, number or bool as text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(error::service_text(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON object from a successful body. The reason never quotes the body.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the body is JSON but not an object".to_owned()),
        Err(_) if body.is_empty() => Err("the body is empty".to_owned()),
        Err(e) => Err(format!(
            "the body is not JSON (line {}, column {})",
            e.line(),
            e.column()
        )),
    }
}

/// A required, non-empty string field of a successful body.
pub(crate) fn required_str<'m>(object: &'m Map<String, Value>, key: &str) -> Result<&'m str, String> {
    match object.get(key) {
        None | Some(Value::Null) => Err(format!("the field `{key}` is missing")),
        Some(Value::String(s)) if s.is_empty() => Err(format!("the field `{key}` is empty")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("the field `{key}` is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Vec<u8>> {
        let mut b = Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn content_type_explains_a_body_that_does_not_parse() {
        let parse = |body: &[u8]| serde_json::from_slice::<Value>(body).map_err(|e| e.to_string());
        let html = response(200, &[("Content-Type", "text/html")], "<html>token</html>");
        let err = parse_success(&html, "EmbedToken", parse).unwrap_err();
        assert!(
            err.to_string().contains("got Content-Type \"text/html\""),
            "{err}"
        );
        // A body that parses is taken whatever its header says.
        let mislabelled = response(200, &[("Content-Type", "text/plain")], r#"{"a":1}"#);
        assert!(parse_success(&mislabelled, "EmbedToken", parse).is_ok());
        let plain_bad = response(200, &[("Content-Type", "application/json")], "{");
        let err = parse_success(&plain_bad, "EmbedToken", parse).unwrap_err();
        assert!(err.to_string().contains("EOF"), "{err}");
    }

    #[test]
    fn power_bi_401_body() {
        let r = response(
            401,
            &[("RequestId", "49c2e739-d400-429c-860b-856b92f52a4b")],
            r#"{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException","parameters":{},"details":[],"exceptionCulprit":1}}}"#,
        );
        let e = api_error(&r);
        assert_eq!(
            e.to_string(),
            "Power BI returned 401 Unauthorized PowerBINotAuthorizedException (RequestId 49c2e739-d400-429c-860b-856b92f52a4b)"
        );
        let api = e.as_api().unwrap();
        assert_eq!(api.pbi_error().unwrap().exception_culprit, Some(1));
        assert_eq!(e.kind(), crate::ErrorKind::NotAuthorized);
    }

    #[test]
    fn html_error_page() {
        let r = response(
            502,
            &[("Content-Type", "text/html")],
            "<html>\n<b>Bad gateway</b></html>",
        );
        let e = api_error(&r);
        assert_eq!(
            e.to_string(),
            "Power BI returned 502 Bad Gateway: <html> <b>Bad gateway</b></html> (no RequestId)"
        );
        assert_eq!(e.kind(), crate::ErrorKind::ServerError);
    }

    #[test]
    fn request_id_is_checked() {
        let r = response(500, &[("RequestId", "a b")], "");
        assert_eq!(request_id(r.headers()), None);
        let r = response(500, &[("x-ms-request-id", "abc")], "");
        assert_eq!(request_id(r.headers()).as_deref(), Some("abc"));
    }

    #[test]
    fn media_types() {
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("Application/JSON"));
        assert!(is_json_media_type("application/problem+json"));
        assert!(!is_json_media_type("text/html"));
        assert!(!is_json_media_type("+json"));
    }

    #[test]
    fn success_fields() {
        let o = json_object(br#"{"a":"x","b":5,"c":""}"#).unwrap();
        assert_eq!(required_str(&o, "a"), Ok("x"));
        assert_eq!(
            required_str(&o, "b").unwrap_err(),
            "the field `b` is not a string"
        );
        assert_eq!(required_str(&o, "c").unwrap_err(), "the field `c` is empty");
        assert_eq!(required_str(&o, "d").unwrap_err(), "the field `d` is missing");
        assert!(json_object(b"[1]").unwrap_err().contains("not an object"));
        assert!(json_object(b"").unwrap_err().contains("empty"));
        assert!(
            json_object(b"{\"token\":\"secret")
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
