//! Client assertions and federated tokens as Entra ID judges them: each refusal's AADSTS
//! code and message, from assertions this test signs itself (so each can be wrong in one
//! way only).

mod common;

use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{SCOPE, send};
use pbi_embed_emulator::Emulator;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A registered certificate's key and thumbprints.
struct Signer {
    key: KeyPair,
    sha1: Vec<u8>,
    sha256: Vec<u8>,
}

impl Signer {
    fn registered(emulator: &Emulator, client_id: &str) -> Self {
        let (certificate, key) = emulator.issue_client_certificate(client_id).unwrap();
        let der = CertificateDer::from_pem_slice(certificate.as_bytes()).unwrap();
        let PrivateKeyDer::Pkcs8(key) = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap() else {
            panic!("a PKCS#8 key")
        };
        Self {
            key: KeyPair::from_pkcs8(key.secret_pkcs8_der()).unwrap(),
            sha1: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der)
                .as_ref()
                .to_vec(),
            sha256: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der)
                .as_ref()
                .to_vec(),
        }
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signed = format!("{}.{}", part(header), part(claims));
        let mut signature = vec![0; self.key.public_modulus_len()];
        let encoding = if header["alg"] == "PS256" {
            &signature::RSA_PSS_SHA256
        } else {
            &signature::RSA_PKCS1_SHA256
        };
        self.key
            .sign(encoding, &SystemRandom::new(), signed.as_bytes(), &mut signature)
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Posts a client-assertion sign-in; the status and body.
fn sign_in(emulator: &Emulator, tenant: &str, client_id: &str, assertion: &str) -> (u16, Value) {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("scope", SCOPE)
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_assertion_type", JWT_BEARER)
        .append_pair("client_assertion", assertion)
        .finish();
    let reply = send(
        emulator.addr(),
        "POST",
        &format!("/{tenant}/oauth2/v2.0/token"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    (reply.status, reply.json())
}

fn code(body: &Value) -> i64 {
    body["error_codes"][0].as_i64().unwrap_or_default()
}

#[test]
fn every_flaw_of_a_certificates_assertion_has_its_code() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let signer = Signer::registered(&emulator, &ids.client_id);
    let audience = format!("https://login.example/{}/oauth2/v2.0/token", ids.tenant);
    let t = now();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": URL_SAFE_NO_PAD.encode(&signer.sha1)});
    let claims = json!({"aud": audience, "iss": ids.client_id, "sub": ids.client_id, "jti": "a", "nbf": t, "exp": t + 600});
    let with = |header: &Value, claims: &Value| {
        sign_in(
            &emulator,
            &ids.tenant,
            &ids.client_id,
            &signer.sign(header, claims),
        )
    };

    // Accepted: x5t (base64url) with RS256; x5t#S256 in standard base64 with padding and PS256.
    let (status, body) = with(&header, &claims);
    assert_eq!(status, 200, "{body}");
    let padded = json!({"alg": "PS256", "x5t#S256": STANDARD.encode(&signer.sha256)});
    let mut fresh = claims.clone();
    fresh["jti"] = json!("b");
    fresh["iat"] = json!(t as f64 + 0.5); // MSAL sends float seconds
    assert_eq!(with(&padded, &fresh).0, 200);

    let cases: Vec<(&str, Value, Value, i64, &str)> = vec![
        (
            "the same jti again",
            header.clone(),
            claims.clone(),
            50_027,
            "already used",
        ),
        (
            "another audience",
            header.clone(),
            json!({"aud": "https://graph.microsoft.com", "iss": ids.client_id, "sub": ids.client_id, "jti": "c", "exp": t + 600}),
            50_027,
            "audience",
        ),
        (
            "an issuer that is not the client",
            header.clone(),
            json!({"aud": audience, "iss": "someone", "sub": "someone", "jti": "d", "exp": t + 600}),
            50_027,
            "issuer",
        ),
        (
            "a subject unlike the issuer",
            header.clone(),
            json!({"aud": audience, "iss": ids.client_id, "sub": "other", "jti": "e", "exp": t + 600}),
            50_048,
            "Subject mismatches Issuer",
        ),
        (
            "an expired assertion",
            header.clone(),
            json!({"aud": audience, "iss": ids.client_id, "sub": ids.client_id, "jti": "f", "nbf": t - 3600, "exp": t - 1200}),
            700_024,
            "valid time range",
        ),
        (
            "an assertion not yet valid",
            header.clone(),
            json!({"aud": audience, "iss": ids.client_id, "sub": ids.client_id, "jti": "g", "nbf": t + 3600, "exp": t + 4000}),
            700_024,
            "valid time range",
        ),
        (
            "no thumbprint",
            json!({"alg": "RS256"}),
            json!({"aud": audience, "iss": ids.client_id, "sub": ids.client_id, "jti": "h", "exp": t + 600}),
            50_027,
            "x5t",
        ),
        (
            "an algorithm Entra does not take",
            json!({"alg": "HS256", "x5t": URL_SAFE_NO_PAD.encode(&signer.sha1)}),
            claims.clone(),
            50_027,
            "Unsupported algorithm",
        ),
        (
            "no exp",
            header.clone(),
            json!({"aud": audience, "iss": ids.client_id, "sub": ids.client_id, "jti": "i"}),
            50_027,
            "exp",
        ),
    ];
    for (what, header, claims, want, says) in cases {
        let (status, body) = with(&header, &claims);
        assert_eq!((status, code(&body)), (401, want), "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}");
        assert!(
            body["error_description"].as_str().unwrap().contains(says),
            "{what}: {body}"
        );
    }

    // A signature that does not verify, and text that is no JWT.
    let mut tampered = signer.sign(
        &header,
        &json!({"aud": audience, "iss": ids.client_id, "sub": ids.client_id, "jti": "j", "exp": t + 600}),
    );
    // Flip one character in the middle of the signature.
    let at = tampered.len() - 100;
    let flipped = if tampered.as_bytes()[at] == b'A' { "B" } else { "A" };
    tampered.replace_range(at..=at, flipped);
    let (status, body) = sign_in(&emulator, &ids.tenant, &ids.client_id, &tampered);
    assert_eq!((status, code(&body)), (401, 700_027), "{body}");
    let (_, body) = sign_in(&emulator, &ids.tenant, &ids.client_id, "not-a-jwt");
    assert_eq!(code(&body), 50_027, "{body}");
}

#[test]
fn every_flaw_of_a_federated_token_has_its_code() {
    let emulator = Emulator::start().unwrap();
    let ids = emulator.ids();
    let subject = "system:serviceaccount:embedding:backend";
    let with = |token: &str| sign_in(&emulator, &ids.tenant, &ids.client_id, token);
    assert_eq!(
        with(&emulator.issue_federated_token(subject, Duration::from_secs(600))).0,
        200
    );
    // Federated tokens are reused until they rotate: the same one signs in again.
    let token = emulator.issue_federated_token(subject, Duration::from_secs(600));
    assert_eq!(with(&token).0, 200);
    assert_eq!(with(&token).0, 200);
    for (what, token, want) in [
        (
            "an untrusted subject",
            emulator.issue_federated_token("system:serviceaccount:x:y", Duration::from_secs(600)),
            700_213,
        ),
        (
            "the subject in another case",
            emulator.issue_federated_token(&subject.to_uppercase(), Duration::from_secs(600)),
            7_002_138,
        ),
        (
            "an expired token",
            emulator.issue_federated_token_valid(
                subject,
                SystemTime::now() - Duration::from_secs(7200),
                SystemTime::now() - Duration::from_secs(3600),
            ),
            700_024,
        ),
    ] {
        let (status, body) = with(&token);
        assert_eq!((status, code(&body)), (401, want), "{what}: {body}");
    }
    // Another app: its federated credentials do not include this subject's issuer.
    let (_, body) = sign_in(
        &emulator,
        &ids.tenant,
        &ids.outsider_client_id,
        &emulator.issue_federated_token(subject, Duration::from_secs(600)),
    );
    assert_eq!(code(&body), 700_211, "{body}");
}
