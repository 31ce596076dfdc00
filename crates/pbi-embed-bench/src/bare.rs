//! The hand-written clients pbi-embed is compared with: ureq and reqwest posting the
//! identical bytes and pulling the token out of the JSON answer, configured as pbi-embed
//! configures them (no redirects, the same time-outs) unless asked for none.

use std::time::Duration;

/// The time-outs pbi-embed's clients use by default: (connect, exchange).
#[must_use]
pub fn default_timeouts() -> (Duration, Duration) {
    let settings = pbi_embed_core::ClientSettings::default();
    (settings.connect_timeout, settings.timeout)
}

/// One GenerateToken call as a hand-written client makes it.
#[derive(Clone, Debug)]
pub struct Call {
    /// The full URL.
    pub url: String,
    /// `Bearer {token}`.
    pub authorization: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// The token in a GenerateToken answer, read as a hand-written client reads it.
#[must_use]
pub fn token(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    json["token"].as_str().unwrap_or_default().to_owned()
}

/// A ureq agent; with `timeouts`, pbi-embed-ureq's connect and per-call time-outs.
#[must_use]
pub fn ureq_agent(timeouts: bool) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0);
    let config = if timeouts {
        let (connect, exchange) = default_timeouts();
        config
            .timeout_connect(Some(connect))
            .timeout_per_call(Some(exchange))
    } else {
        config
    };
    config.build().into()
}

/// A reqwest client; with `timeouts`, pbi-embed-reqwest's connect and overall time-outs.
///
/// # Panics
/// If reqwest cannot build a client (no TLS backend).
#[must_use]
pub fn reqwest_client(timeouts: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    let builder = if timeouts {
        let (connect, exchange) = default_timeouts();
        builder.connect_timeout(connect).timeout(exchange)
    } else {
        builder
    };
    builder.build().unwrap_or_else(|e| panic!("{e}"))
}

/// Makes the call with ureq and returns the token.
///
/// # Panics
/// On a transport error.
#[must_use]
pub fn call_ureq(agent: &ureq::Agent, call: &Call) -> String {
    let mut response = agent
        .post(&call.url)
        .header("Authorization", &call.authorization)
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Accept", "application/json")
        .send(&call.body[..])
        .unwrap_or_else(|e| panic!("{e}"));
    token(&response.body_mut().read_to_vec().unwrap_or_default())
}

/// Makes the call with reqwest and returns the token.
///
/// # Panics
/// On a transport error.
pub async fn call_reqwest(client: &reqwest::Client, call: &Call) -> String {
    let response = client
        .post(call.url.clone())
        .header("Authorization", call.authorization.clone())
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Accept", "application/json")
        .body(call.body.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    token(&response.bytes().await.unwrap_or_default())
}
