//! Properties that must hold for any input (proptest; failures are saved under
//! `proptest-regressions/` and replayed first on every run).

use std::time::{Duration, SystemTime};

use pbi_embed_core::{
    AccessToken, ApiRequest, ClientCredentials, ClientId, ClientSecret, Cloud, DatasetId, DatasetToken,
    EffectiveIdentity, Freshness, GenerateTokenRequestV2, IdentityBlob, MultiResourceToken, Operation,
    Outcome, Redacted, ReportId, RetryAfter, RetryDecision, RetryPolicy, TenantId, WorkspaceId,
    XmlaPermissions, http,
};
use proptest::prelude::*;

fn guid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
}

fn dataset_id() -> impl Strategy<Value = DatasetId> {
    prop_oneof![guid(), "[A-Za-z0-9][A-Za-z0-9 /?#%&._-]{0,40}[A-Za-z0-9]"]
        .prop_map(|s| DatasetId::parse(&s).unwrap())
}

/// A secret as tokens look: long enough never to appear by chance.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/=._~-]{16,64}"
}

fn identity() -> impl Strategy<Value = EffectiveIdentity> {
    (
        "[ -~]{1,256}",
        prop::collection::vec("[^,\\p{Cc}]{1,50}", 0..5),
        prop::collection::vec(dataset_id(), 1..3),
        prop::option::of("[ -~]{0,30}"),
        prop::option::of(secret()),
    )
        .prop_map(|(username, roles, datasets, custom, blob)| {
            let mut identity = EffectiveIdentity::new(username).roles(roles);
            for d in datasets {
                identity = identity.dataset(d);
            }
            if let Some(c) = custom {
                identity = identity.custom_data(c);
            }
            if let Some(b) = blob {
                identity = identity.identity_blob(IdentityBlob::new(b));
            }
            identity
        })
}

fn multi_resource() -> impl Strategy<Value = MultiResourceToken> {
    (
        prop::collection::vec((dataset_id(), any::<Option<bool>>()), 0..5),
        prop::collection::vec((guid(), any::<bool>()), 1..5),
        prop::collection::vec(guid(), 0..3),
        prop::collection::vec(identity(), 0..3),
        prop::option::of(1u32..100_000),
    )
        .prop_map(|(datasets, reports, workspaces, identities, lifetime)| {
            let mut op = MultiResourceToken::new().identities(identities);
            for (d, xmla) in datasets {
                op = match xmla {
                    None => op.dataset(d),
                    Some(true) => op.dataset_with_xmla(d, XmlaPermissions::ReadOnly),
                    Some(false) => op.dataset_with_xmla(d, XmlaPermissions::Off),
                };
            }
            for (r, edit) in reports {
                let r = ReportId::parse(&r).unwrap();
                op = if edit { op.editable_report(r) } else { op.report(r) };
            }
            for w in workspaces {
                op = op.target_workspace(WorkspaceId::parse(&w).unwrap());
            }
            if let Some(l) = lifetime {
                op = op.lifetime_in_minutes(l);
            }
            op
        })
}

proptest! {
    /// A valid request builds, is POSTed to the cloud's host with a sensitive bearer
    /// header, and its JSON body round-trips through the request type unchanged.
    #[test]
    fn request_bodies_round_trip(op in multi_resource(), token in secret()) {
        let token = AccessToken::new(token);
        let request = op.authorize(&Cloud::Public, &token).to_http().unwrap();
        prop_assert_eq!(request.method(), http::Method::POST);
        prop_assert_eq!(request.uri().host(), Some("api.powerbi.com"));
        prop_assert!(request.headers()["authorization"].is_sensitive());
        let parsed: GenerateTokenRequestV2 = serde_json::from_slice(request.body()).unwrap();
        prop_assert_eq!(serde_json::to_vec(&parsed).unwrap(), request.body().clone());
        let again = MultiResourceToken::from_request(parsed);
        prop_assert_eq!(again.body().unwrap().unwrap(), request.body().clone());
    }

    /// Any status and any body is classified without panicking; errors keep the status.
    #[test]
    fn every_status_is_classified(
        status in 100u16..600,
        body in prop::collection::vec(any::<u8>(), 0..300),
        content_type in prop::option::of(prop_oneof![Just("application/json".to_owned()), Just("text/html".to_owned()), "[ -~]{0,20}"]),
        retry_after in prop::option::of("[ -~]{0,40}"),
    ) {
        let mut builder = http::Response::builder().status(status);
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        if let Some(ra) = retry_after {
            builder = builder.header("retry-after", ra);
        }
        let response = builder.body(body).unwrap();
        let token = AccessToken::new("t");
        let op = DatasetToken::new(WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(), DatasetId::parse("d").unwrap());
        let result = op.authorize(&Cloud::Public, &token).from_http(response.clone());
        match result {
            Ok(_) => prop_assert!((200..300).contains(&status)),
            Err(e) => {
                prop_assert_eq!(e.status().map(|s| s.as_u16()), Some(status));
                let _ = (e.to_string(), format!("{e:?}"), e.kind());
                let outcome = Outcome::from(&e);
                let transient = matches!(status, 408 | 429 | 500 | 502 | 503 | 504);
                prop_assert_eq!(outcome.is_transient(), transient && !(200..300).contains(&status));
            }
        }
        let entra = ClientCredentials::new(
            TenantId::parse("contoso.onmicrosoft.com").unwrap(),
            ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            ClientSecret::new("s"),
        );
        if let Err(e) = entra.from_http(response) {
            prop_assert_eq!(e.status().map(|s| s.as_u16()), Some(status));
            let _ = (e.to_string(), format!("{e:?}"), e.kind());
        }
    }

    /// No secret shows in Debug output, a redacted request, or an error about a
    /// successful body that held it.
    #[test]
    fn secrets_never_print(
        client_secret in secret(),
        access_token in secret(),
        embed_token in secret(),
        blob in secret(),
        token_id in prop_oneof![Just("\"id\"".to_owned()), Just("5".to_owned()), "\"[ -~]{0,10}\""],
        expiration in prop_oneof![Just("\"2028-07-29T17:58:19Z\"".to_owned()), Just("null".to_owned()), "\"[ -~]{0,10}\""],
        content_type in prop_oneof![Just("application/json"), Just("text/plain")],
    ) {
        let secrets = [&client_secret, &access_token, &embed_token, &blob];
        let check = |text: &str| secrets.iter().all(|s| !text.contains(s.as_str()));

        let credentials = ClientCredentials::new(
            TenantId::parse("contoso.onmicrosoft.com").unwrap(),
            ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            ClientSecret::new(client_secret.clone()),
        );
        { let text = format!("{credentials:?}"); prop_assert!(check(&text)) };
        let entra_request = credentials.to_http().unwrap();
        { let text = Redacted(&entra_request).to_string(); prop_assert!(check(&text)) };

        let op = MultiResourceToken::new()
            .report(ReportId::parse("b2e49b01-2356-4456-bfb9-3f4c2bc4ddbd").unwrap())
            .identity(EffectiveIdentity::from_identity_blob(IdentityBlob::new(blob.clone())).dataset(DatasetId::parse("d").unwrap()));
        { let text = format!("{op:?}"); prop_assert!(check(&text)) };
        let token = AccessToken::new(access_token.clone());
        let call = op.authorize(&Cloud::Public, &token);
        { let text = format!("{call:?}"); prop_assert!(check(&text)) };
        let request = call.to_http().unwrap();
        { let text = Redacted(&request).to_string(); prop_assert!(check(&text)) };
        { let text = format!("{:?}", request.headers()); prop_assert!(check(&text)) };

        let body = format!(r#"{{"token":"{embed_token}","tokenId":{token_id},"expiration":{expiration}}}"#);
        let response = http::Response::builder().status(200).header("content-type", content_type).body(body).unwrap();
        match call.from_http(response) {
            Ok(embed) => { let text = format!("{embed:?}"); prop_assert!(check(&text)) },
            Err(e) => { let text = format!("{e} {e:?}"); prop_assert!(check(&text)) },
        }
        let entra_body = format!(r#"{{"access_token":"{access_token}","expires_in":{token_id}}}"#);
        let response = http::Response::builder().status(200).body(entra_body).unwrap();
        match credentials.from_http(response) {
            Ok(t) => { let text = format!("{t:?}"); prop_assert!(check(&text)) },
            Err(e) => { let text = format!("{e} {e:?}"); prop_assert!(check(&text)) },
        }
    }

    /// Delta-seconds parse to that delay; an HTTP-date parses back to its instant.
    #[test]
    fn retry_after_forms(seconds in 0u64..=RetryAfter::MAX_SECONDS, unix in 0u64..4_000_000_000) {
        let value = http::HeaderValue::from_str(&seconds.to_string()).unwrap();
        prop_assert_eq!(RetryAfter::parse(&value), Some(RetryAfter::Delay(Duration::from_secs(seconds))));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(unix);
        let value = http::HeaderValue::from_str(&httpdate::fmt_http_date(at)).unwrap();
        prop_assert_eq!(RetryAfter::parse(&value), Some(RetryAfter::At(at)));
    }

    /// Any header value parses to something or nothing, never a panic.
    #[test]
    fn retry_after_is_total(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(value) = http::HeaderValue::from_bytes(&bytes) {
            let _ = RetryAfter::parse(&value);
        }
    }

    /// A later `now` never makes a token fresher.
    #[test]
    fn freshness_is_monotonic_in_now(expires in 0u64..10_000, margin in 0u64..5_000, a in 0u64..20_000, b in 0u64..20_000) {
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let (early, late) = (a.min(b), a.max(b));
        let margin = Duration::from_secs(margin);
        prop_assert!(Freshness::at(t(expires), t(early), margin) <= Freshness::at(t(expires), t(late), margin));
    }

    /// Retries happen exactly for the statuses the design names (408, 429, 500, 502, 503,
    /// 504), within the policy's count, and no wait reaches past the call's deadline.
    #[test]
    fn retry_decisions_follow_the_documented_statuses_and_the_deadline(
        status in 100u16..600,
        retry_after in prop::option::of(0u64..100),
        attempt in 1u32..10,
        remaining in 0u64..120,
        random in any::<u32>(),
    ) {
        // Written out here, not read from the implementation.
        const RETRYABLE: [u16; 6] = [408, 429, 500, 502, 503, 504];
        let policy = RetryPolicy::default();
        let outcome = Outcome::Status {
            status: http::StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(|s| RetryAfter::Delay(Duration::from_secs(s))),
        };
        let remaining = Duration::from_secs(remaining);
        let decision = policy.decide(outcome, attempt, remaining, SystemTime::UNIX_EPOCH, random);
        match decision {
            RetryDecision::RetryAfter(delay) => {
                prop_assert!(RETRYABLE.contains(&status), "retried {status}");
                prop_assert!(attempt <= 3, "retried after attempt {attempt}");
                prop_assert!(delay < remaining, "waits {delay:?} with {remaining:?} left");
                prop_assert!(delay <= Duration::from_secs(30));
            }
            RetryDecision::GiveUp(_) => {
                // A retryable status, early enough, with time to spare and a short
                // Retry-After, must be retried.
                let must_retry = RETRYABLE.contains(&status)
                    && attempt <= 3
                    && retry_after.is_none_or(|s| s <= 30)
                    && remaining >= Duration::from_secs(31);
                prop_assert!(!must_retry, "gave up on {status} at attempt {attempt}: {decision:?}");
            }
        }
    }

    /// The Entra form carries exactly the client id, scope, secret and grant type.
    #[test]
    fn entra_form_round_trips(client_secret in "\\PC{1,64}", cloud in prop::sample::select(Cloud::NAMED.to_vec())) {
        let op = ClientCredentials::new(
            TenantId::parse("contoso.onmicrosoft.com").unwrap(),
            ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            ClientSecret::new(client_secret.clone()),
        ).cloud(cloud.clone());
        let request = op.to_http().unwrap();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(request.body()).into_owned().collect();
        prop_assert_eq!(pairs, vec![
            ("client_id".to_owned(), "00000000-0000-0000-0000-000000000001".to_owned()),
            ("scope".to_owned(), cloud.scope().to_owned()),
            ("client_secret".to_owned(), client_secret),
            ("grant_type".to_owned(), "client_credentials".to_owned()),
        ]);
    }

    /// The Entra parser gives a token for a 2xx answer, and for any other status an Entra
    /// error with that status, even when the body is a perfectly good token.
    #[test]
    fn entra_answers_are_tokens_only_when_successful(status in 100u16..600, expires_in in 1u64..86_400) {
        let op = ClientCredentials::new(
            TenantId::parse("contoso.onmicrosoft.com").unwrap(),
            ClientId::parse("00000000-0000-0000-0000-000000000001").unwrap(),
            ClientSecret::new("s"),
        );
        let body = format!(r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"eyJ0eXAiOiJKV1Qi"}}"#);
        let response = http::Response::builder().status(status).body(body.into_bytes()).unwrap();
        match op.from_http(response) {
            Ok(token) => {
                prop_assert!((200..300).contains(&status), "{} read as a token", status);
                prop_assert_eq!(token.expires_in, Duration::from_secs(expires_in));
            }
            Err(error) => {
                prop_assert!(!(200..300).contains(&status), "a good body with {} refused: {}", status, error);
                prop_assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
                prop_assert!(!error.to_string().contains("eyJ0eXAiOiJKV1Qi"));
            }
        }
    }

    /// Any string either parses as a GUID id that is safe in a path, or is refused.
    #[test]
    fn ids_are_path_safe(s in "\\PC{0,40}") {
        if let Ok(id) = ReportId::parse(&s) {
            prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
        }
        if let Ok(d) = DatasetId::parse(&s) {
            let path = DatasetToken::new(WorkspaceId::parse("f089354e-8366-4e18-aea3-4cb4a3a50b48").unwrap(), d).path();
            prop_assert!(path.parse::<http::Uri>().is_ok(), "{}", path);
            prop_assert_eq!(path.matches('/').count(), 7);
        }
    }
}
