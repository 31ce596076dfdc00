//! pbi-embed-core in an HTTP stack of your own, here hyper's client: the core builds
//! `http::Request` values and reads `http::Response` values; the stack only moves bytes.
//!
//! ```sh
//! cargo run --example custom_http_stack
//! ```
//!
//! What a transport must do, and this one does: send the request as built, follow no
//! redirect, read at most `MAX_RESPONSE_BYTES` of the body, and hand the whole response,
//! whatever its status, to `from_http`.

use std::time::SystemTime;

use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pbi_embed_core::{ApiRequest, ClientCredentials, MAX_RESPONSE_BYTES, Operation, ReportToken, http};
use pbi_embed_examples::Target;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<bytes::Bytes>>;

/// Sends one operation with hyper and parses the answer with the core.
async fn execute<O: Operation>(http: &Http, operation: &O) -> Result<O::Output, BoxError> {
    let request = operation
        .to_http()?
        .map(|body| Full::new(bytes::Bytes::from(body)));
    let response = http.request(request).await?;
    let (parts, body) = response.into_parts();
    let limit = usize::try_from(MAX_RESPONSE_BYTES)?;
    let bytes = Limited::new(body, limit).collect().await?.to_bytes();
    Ok(operation.from_http(http::Response::from_parts(parts, bytes))?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let target = Target::from_env()?;
    if target.emulator.is_none() {
        return Err("this example speaks plain HTTP only; run it without the AZURE_* variables".into());
    }
    println!("Driving pbi-embed-core with hyper against {}", target.describe());
    let http: Http = Client::builder(TokioExecutor::new()).build_http();

    let sign_in = ClientCredentials::new(
        target.tenant.clone(),
        target.client_id.clone(),
        target.client_secret.clone(),
    )
    .cloud(target.cloud.clone());
    let received_at = SystemTime::now();
    let bearer = execute(&http, &sign_in).await?.into_bearer(received_at);
    println!(
        "signed in; the access token expires in {:?}",
        bearer.expires_at.and_then(|t| t.duration_since(received_at).ok())
    );

    let mut request = ReportToken::view(target.workspace.clone(), target.report.clone());
    if let Some(identity) = &target.identity {
        request = request.identity(identity.clone());
    }
    let token = execute(&http, &request.authorize(&target.cloud, &bearer.access_token)).await?;
    println!("token id:   {}", token.token_id);
    println!("expires at: {}", token.expiration_rfc3339());
    Ok(())
}
