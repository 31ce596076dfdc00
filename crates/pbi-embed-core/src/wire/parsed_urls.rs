//! Parsed URLs, for an HTTP stack that takes a [`url::Url`] (reqwest): each exchange's URL
//! comes as text, and parsing it (or setting a path on the API base) costs more than the
//! rest of a client's work on a request, while a service asks for the same few items
//! again and again. The parsed URLs are kept, a bounded number of them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use url::Url;

/// The most URLs kept; past it, the memo starts over.
const CAPACITY: usize = 1024;

/// Exchanges' URLs, parsed once each: below the API base (without a query) as the parsed
/// base with the request's path; elsewhere (the sign-in host, an identity endpoint) parsed
/// whole.
#[derive(Debug)]
pub struct ParsedUrls {
    base: String,
    base_url: Url,
    kept: Mutex<HashMap<String, Url>>,
}

impl ParsedUrls {
    /// URLs below `api_base` (the cloud's API base).
    ///
    /// # Errors
    /// When `api_base` is not a URL.
    pub fn new(api_base: &str) -> Result<Self, url::ParseError> {
        Ok(Self {
            base: api_base.to_owned(),
            base_url: Url::parse(api_base)?,
            kept: Mutex::new(HashMap::new()),
        })
    }

    /// The URL `text` names, parsed before or now.
    ///
    /// # Errors
    /// When `text` is not a URL (it is then not kept).
    pub fn get(&self, text: &str) -> Result<Url, url::ParseError> {
        if let Some(url) = self.kept().get(text) {
            return Ok(url.clone());
        }
        let below_base = text
            .strip_prefix(self.base.as_str())
            .filter(|path| path.starts_with('/') && !path.contains(['?', '#']));
        let url = match below_base {
            Some(path) => {
                let mut url = self.base_url.clone();
                url.set_path(&[self.base_url.path().trim_end_matches('/'), path].concat());
                url
            }
            None => Url::parse(text)?,
        };
        let mut kept = self.kept();
        if kept.len() >= CAPACITY {
            kept.clear();
        }
        kept.insert(text.to_owned(), url.clone());
        Ok(url)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, Url>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_once_below_the_base_and_whole_elsewhere_and_stay_bounded() {
        let urls = ParsedUrls::new("https://api.powerbi.com/pbi").unwrap();
        let groups = urls.get("https://api.powerbi.com/pbi/v1.0/myorg/groups").unwrap();
        assert_eq!(groups.path(), "/pbi/v1.0/myorg/groups");
        assert!(
            urls.kept()
                .contains_key("https://api.powerbi.com/pbi/v1.0/myorg/groups")
        );
        let entra = urls
            .get("https://login.microsoftonline.com/t/oauth2/v2.0/token?x=1")
            .unwrap();
        assert_eq!(
            (entra.host_str(), entra.query()),
            (Some("login.microsoftonline.com"), Some("x=1"))
        );
        for n in 0..CAPACITY + 10 {
            urls.get(&format!("https://h/{n}")).unwrap();
        }
        assert!(urls.kept().len() <= CAPACITY);
        assert!(
            urls.get("not a url").is_err() && !urls.kept().contains_key("not a url"),
            "failures are not kept"
        );
    }
}
