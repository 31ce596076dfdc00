//! A Power BI REST call as data: [`ApiRequest`] says what to ask; it is validated and
//! serialized once ([`Prepared`]), then addressed to a cloud and authorized with a bearer
//! token for each attempt. Its [`CacheKey`] says which requests are the same.

use std::fmt;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method};

use crate::wire::cloud::Cloud;
use crate::wire::error::ExchangeError;
use crate::wire::ids::ProfileId;
use crate::wire::operation::{CONTENT_TYPE_JSON, HttpRequest, MAX_REQUEST_BYTES, Operation};
use crate::wire::response;
use crate::wire::secret::AccessToken;

/// The header that makes a service principal act as one of its profiles.
pub const PROFILE_HEADER: &str = "X-PowerBI-Profile-Id";

/// A Power BI REST call: what to ask, before it is addressed to a cloud and authorized.
///
/// [`authorize`](Self::authorize) binds it to a cloud and a bearer token, which gives an
/// [`Operation`]. The adapters do that for you, with a token they keep fresh.
pub trait ApiRequest {
    /// What a successful response parses into.
    type Output;

    /// The REST operation id, such as `Reports_GenerateTokenInGroup`.
    fn operation_id(&self) -> &'static str;

    /// What the response body is called in errors, such as `EmbedToken`.
    fn output_name(&self) -> &'static str;

    /// The HTTP method.
    fn method(&self) -> Method;

    /// The path below the API base, starting `/v1.0/myorg/`, with ids percent-encoded.
    fn path(&self) -> String;

    /// Checks the request against the documented rules of its route.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] naming the field at fault.
    fn validate(&self) -> Result<(), ExchangeError>;

    /// The JSON body, if the call has one.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] if the body cannot be serialized.
    fn body(&self) -> Result<Option<Vec<u8>>, ExchangeError>;

    /// Parses a successful (2xx) JSON body. The error is a reason that quotes nothing of
    /// the body, since a successful body holds a token.
    ///
    /// # Errors
    /// A description of what is missing or malformed.
    fn parse_success(&self, body: &[u8]) -> Result<Self::Output, String>;

    /// Binds this call to a cloud and an Entra ID access token.
    fn authorize<'a>(&'a self, cloud: &'a Cloud, access_token: &'a AccessToken) -> Authorized<'a, Self>
    where
        Self: Sized,
    {
        Authorized {
            request: self,
            cloud,
            access_token,
            profile: None,
        }
    }
}

/// An [`ApiRequest`] with a cloud and a bearer token: an [`Operation`].
#[derive(Debug)]
#[must_use]
pub struct Authorized<'a, R> {
    request: &'a R,
    cloud: &'a Cloud,
    access_token: &'a AccessToken,
    profile: Option<&'a ProfileId>,
}

impl<'a, R> Authorized<'a, R> {
    /// Acts as a service principal profile (sends `X-PowerBI-Profile-Id`).
    pub fn profile(mut self, profile: Option<&'a ProfileId>) -> Self {
        self.profile = profile;
        self
    }
}

impl<R: ApiRequest> Operation for Authorized<'_, R> {
    type Output = R::Output;

    fn name(&self) -> &'static str {
        self.request.operation_id()
    }

    fn to_http(&self) -> Result<HttpRequest, ExchangeError> {
        let base = ApiBase::of(self.cloud)?;
        let (request, _) = Prepared::new(self.request)?.to_http(&base, self.access_token, self.profile)?;
        Ok(request)
    }

    fn from_http<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<Self::Output, ExchangeError> {
        response::parse_success(&response, self.request.output_name(), |body| {
            self.request.parse_success(body)
        })
    }
}

/// A Power BI call validated and serialized once, ready to be sent (and sent again) with
/// any bearer token.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) operation: &'static str,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    /// The service principal profile it is sent as, when not the client's.
    profile: Option<ProfileId>,
}

impl Prepared {
    /// Validates and serializes `request`.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when it breaks a rule of its route or its body is larger
    /// than [`MAX_REQUEST_BYTES`].
    pub(crate) fn new<R: ApiRequest>(request: &R) -> Result<Self, ExchangeError> {
        request.validate()?;
        let body = request.body()?;
        if let Some(body) = &body
            && body.len() > MAX_REQUEST_BYTES
        {
            return Err(ExchangeError::invalid_input(
                "body",
                format!(
                    "is {} bytes; Power BI refuses request bodies over {MAX_REQUEST_BYTES} bytes",
                    body.len()
                ),
            ));
        }
        Ok(Self {
            operation: request.operation_id(),
            method: request.method(),
            path: request.path(),
            body,
            profile: None,
        })
    }

    /// The same request, sent as `profile` instead of the client's (when given).
    pub(crate) fn sent_as(mut self, profile: Option<&ProfileId>) -> Self {
        if let Some(profile) = profile {
            self.profile = Some(profile.clone());
        }
        self
    }

    /// What identifies this call for caching and sharing: operation, path, profile (its
    /// own, else the client's `default`), body.
    pub(crate) fn key(&self, default: Option<&ProfileId>) -> CacheKey {
        let profile = self
            .profile
            .as_ref()
            .or(default)
            .map(ProfileId::as_str)
            .unwrap_or_default();
        let body = self.body.as_deref().unwrap_or_default();
        let mut key =
            Vec::with_capacity(self.operation.len() + self.path.len() + profile.len() + body.len() + 3);
        for part in [
            self.operation.as_bytes(),
            self.path.as_bytes(),
            profile.as_bytes(),
        ] {
            key.extend_from_slice(part);
            key.push(0);
        }
        key.extend_from_slice(body);
        CacheKey::from_bytes(key)
    }

    /// The request with the cloud's API base and this bearer token, sent as its own
    /// profile or else the client's `default`, and its URL as text.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when the token cannot go in a header or the URI is invalid.
    pub(crate) fn to_http(
        &self,
        base: &ApiBase,
        access_token: &AccessToken,
        default: Option<&ProfileId>,
    ) -> Result<(HttpRequest, String), ExchangeError> {
        let profile = self.profile.as_ref().or(default);
        let authorization = access_token.authorization().ok_or_else(|| {
            ExchangeError::invalid_input("accessToken", "contains characters that cannot go in a header")
        })?;
        let mut path = String::with_capacity(base.path.len() + self.path.len());
        path.push_str(&base.path);
        path.push_str(&self.path);
        let mut url = String::with_capacity(base.text.len() + self.path.len());
        url.push_str(&base.text);
        url.push_str(&self.path);
        // The scheme and host were checked once, with the cloud; only the path is new.
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(base.scheme.clone());
        parts.authority = Some(base.authority.clone());
        parts.path_and_query = Some(
            http::uri::PathAndQuery::from_maybe_shared(path)
                .map_err(|e| ExchangeError::invalid_input("uri", e.to_string()))?,
        );
        let uri =
            http::Uri::from_parts(parts).map_err(|e| ExchangeError::invalid_input("uri", e.to_string()))?;
        let mut request = http::Request::new(self.body.clone().unwrap_or_default());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(AUTHORIZATION, authorization.clone());
        if self.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
        }
        if let Some(profile) = profile {
            let value = HeaderValue::from_str(profile.as_str())
                .map_err(|e| ExchangeError::invalid_input("profileId", e.to_string()))?;
            headers.insert(PROFILE_HEADER, value);
        }
        Ok((request, url))
    }
}

/// A cloud's API base, parsed once: every request's URI is this plus its path.
#[derive(Clone, Debug)]
pub(crate) struct ApiBase {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The base's own path (`/pbi` behind a proxy), without a trailing slash; usually empty.
    path: String,
    /// The whole base as text.
    text: String,
}

impl ApiBase {
    /// The API base of `cloud`.
    ///
    /// # Errors
    /// [`ExchangeError::InvalidInput`] when it is not an absolute URI (clouds are checked when made).
    pub(crate) fn of(cloud: &Cloud) -> Result<Self, ExchangeError> {
        let text = cloud.api_base().to_owned();
        let invalid = || ExchangeError::invalid_input("apiBase", "is not an absolute URI");
        let uri = http::Uri::try_from(text.as_str()).map_err(|_| invalid())?;
        let parts = uri.into_parts();
        let path = parts
            .path_and_query
            .as_ref()
            .map_or("", |p| p.path())
            .trim_end_matches('/')
            .to_owned();
        Ok(Self {
            scheme: parts.scheme.ok_or_else(invalid)?,
            authority: parts.authority.ok_or_else(invalid)?,
            path,
            text,
        })
    }
}

/// Identifies a request for caching: its operation, path, body and profile.
///
/// The body may hold an identity blob, so the key has no readable `Debug`.
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(not(feature = "__bench"), allow(unreachable_pub))]
pub struct CacheKey(Box<[u8]>);

#[cfg_attr(not(feature = "__bench"), allow(unreachable_pub, dead_code))]
impl CacheKey {
    /// The key of `request` sent as `profile`.
    ///
    /// # Errors
    /// When the request is invalid (as [`ApiRequest::validate`]).
    pub fn new<R: ApiRequest>(request: &R, profile: Option<&ProfileId>) -> Result<Self, ExchangeError> {
        Ok(Prepared::new(request)?.key(profile))
    }

    pub(crate) fn from_bytes(key: Vec<u8>) -> Self {
        Self(key.into_boxed_slice())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({} bytes)", self.0.len())
    }
}
