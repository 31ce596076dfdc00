//! reqwest takes a parsed [`Url`]; the core hands each exchange its URL as text. Parsing
//! it (or setting the path on the API base) costs more than the rest of the client's
//! work on a request, and a service asks for the same few items again and again: the
//! parsed URLs are kept, a bounded number of them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use reqwest::Url;

/// The most URLs kept; past it, the cache starts over.
const CAPACITY: usize = 1024;

/// Parsed URLs by their text.
#[derive(Debug, Default)]
pub(crate) struct UrlCache(Mutex<HashMap<String, Url>>);

impl UrlCache {
    /// The URL parsed from `text` before, or `parse`'s, kept for next time.
    pub(crate) fn get_or_parse<E>(
        &self,
        text: &str,
        parse: impl FnOnce() -> Result<Url, E>,
    ) -> Result<Url, E> {
        if let Some(url) = self.lock().get(text) {
            return Ok(url.clone());
        }
        let url = parse()?;
        let mut urls = self.lock();
        if urls.len() >= CAPACITY {
            urls.clear();
        }
        urls.insert(text.to_owned(), url.clone());
        Ok(url)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Url>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_stays_bounded() {
        let cache = UrlCache::default();
        let mut parsed = 0;
        for _ in 0..3 {
            let url = cache
                .get_or_parse("https://api.powerbi.com/v1.0/myorg/groups", || {
                    parsed += 1;
                    Url::parse("https://api.powerbi.com/v1.0/myorg/groups")
                })
                .unwrap();
            assert_eq!(url.path(), "/v1.0/myorg/groups");
        }
        assert_eq!(parsed, 1);
        for n in 0..CAPACITY + 10 {
            let text = format!("https://h/{n}");
            cache.get_or_parse(&text, || Url::parse(&text)).unwrap();
        }
        assert!(cache.lock().len() <= CAPACITY);
        let error = cache.get_or_parse("not a url", || Url::parse("not a url"));
        assert!(
            error.is_err() && !cache.lock().contains_key("not a url"),
            "failures are not kept"
        );
    }
}
