//! The store the environment describes, read the same way by `pbi-embed serve` and the
//! token service: `PBI_REDIS_URL`, `PBI_CACHE_KEY` (base64 of 32 bytes) and its id
//! `PBI_CACHE_KEY_ID` (default `k1`), `PBI_REDIS_TIMEOUT_MS` (the bound on each command),
//! and for a rotation the older key, `PBI_PREVIOUS_CACHE_KEY` with
//! `PBI_PREVIOUS_CACHE_KEY_ID`.

use std::time::Duration;

use crate::{ConfigError, EncryptionKey, RedisStore};

impl RedisStore {
    /// The store the process's environment describes; `None` when `PBI_REDIS_URL` is
    /// unset or empty (the client then shares nothing).
    ///
    /// # Errors
    /// When `PBI_REDIS_URL` is set and another variable is missing or invalid; the error
    /// names the variable and never quotes a key or the URL.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`RedisStore::from_env`], reading each variable through `var` (a test's map, a
    /// configuration file's section).
    ///
    /// # Errors
    /// As [`RedisStore::from_env`].
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        let Some(url) = var("PBI_REDIS_URL") else {
            return Ok(None);
        };
        let key = var("PBI_CACHE_KEY").ok_or_else(|| {
            ConfigError("PBI_CACHE_KEY is not set (base64 of 32 bytes; tokens are encrypted in Redis)".into())
        })?;
        let key_id = var("PBI_CACHE_KEY_ID").unwrap_or_else(|| "k1".to_owned());
        let mut store = Self::new(&url, EncryptionKey::from_base64(&key_id, &key)?)?;
        if let Some(millis) = var("PBI_REDIS_TIMEOUT_MS") {
            let millis: u64 = millis
                .parse()
                .map_err(|_| ConfigError("PBI_REDIS_TIMEOUT_MS is not a number".into()))?;
            store = store.timeout(Duration::from_millis(millis));
        }
        if let Some(previous) = var("PBI_PREVIOUS_CACHE_KEY") {
            let id = var("PBI_PREVIOUS_CACHE_KEY_ID")
                .ok_or_else(|| ConfigError("PBI_PREVIOUS_CACHE_KEY_ID is not set".into()))?;
            store = store.previous_key(EncryptionKey::from_base64(&id, &previous)?);
        }
        Ok(Some(store))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn store(vars: &[(&str, &str)]) -> Result<Option<RedisStore>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        RedisStore::from_vars(|name| vars.get(name).cloned()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_environment_names_the_store_its_key_bound_and_older_key() {
        assert!(store(&[]).unwrap().is_none());
        assert!(
            store(&[("PBI_REDIS_URL", "")]).unwrap().is_none(),
            "empty is unset"
        );
        let url = ("PBI_REDIS_URL", "redis://:hunter2@127.0.0.1:1/");
        let error = store(&[url]).err().unwrap();
        assert!(error.contains("PBI_CACHE_KEY is not set"), "{error}");

        let full = store(&[
            url,
            ("PBI_CACHE_KEY", KEY),
            ("PBI_CACHE_KEY_ID", "k2"),
            ("PBI_REDIS_TIMEOUT_MS", "1000"),
            ("PBI_PREVIOUS_CACHE_KEY", KEY),
            ("PBI_PREVIOUS_CACHE_KEY_ID", "k1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(full.key.id(), "k2");
        assert_eq!(full.timeout, Duration::from_secs(1));
        assert_eq!(full.previous.first().map(EncryptionKey::id), Some("k1"));
        let shown = format!("{full:?}");
        assert!(!shown.contains("hunter2") && !shown.contains(KEY), "{shown}");

        let defaults = store(&[url, ("PBI_CACHE_KEY", KEY)]).unwrap().unwrap();
        assert_eq!(defaults.key.id(), "k1");
        assert!(defaults.previous.is_empty());

        for (vars, named) in [
            (
                vec![url, ("PBI_CACHE_KEY", KEY), ("PBI_REDIS_TIMEOUT_MS", "soon")],
                "PBI_REDIS_TIMEOUT_MS",
            ),
            (
                vec![url, ("PBI_CACHE_KEY", KEY), ("PBI_PREVIOUS_CACHE_KEY", KEY)],
                "PBI_PREVIOUS_CACHE_KEY_ID",
            ),
            (vec![url, ("PBI_CACHE_KEY", "not base64!")], "not base64"),
        ] {
            let error = store(&vars).err().unwrap();
            assert!(error.contains(named), "{named}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
