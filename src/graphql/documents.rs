//! Parsed GraphQL documents, remembered by their text.
//!
//! Why: clients send the same few operations over and over (a dashboard polls one query, an
//! app has a fixed set), and parsing a document with async-graphql's parser costs about 4% of
//! a 50-row page's server time, several times what copying the parsed document costs.
//!
//! Bounded so that clients sending endless distinct documents cannot grow it: at most
//! [`MAX_ENTRIES`] documents of at most [`MAX_CACHED_QUERY_BYTES`] each; longer ones are parsed
//! every time, and when the table is full an arbitrary entry makes room (no recency
//! bookkeeping on the hot path). Only documents that parse are kept; whether one is valid
//! against the schema is checked on every request, as are its variables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::parse_query;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::ServerError;

use super::errors::{ensure_code, GRAPHQL_PARSE_FAILED};
use super::screen::screen_text;
use crate::config::GraphqlLimits;

/// Most documents remembered.
pub const MAX_ENTRIES: usize = 512;
/// Longest document text remembered.
pub const MAX_CACHED_QUERY_BYTES: usize = 8 * 1024;

#[derive(Default)]
pub struct DocumentCache {
    parsed: Mutex<HashMap<Box<str>, Arc<ExecutableDocument>>>,
}

impl DocumentCache {
    /// The parsed `query`, from the cache or parsed now (and remembered when small enough).
    /// Documents are screened ([`screen_text`]) before they are parsed; `limits` bound that.
    pub fn parse(
        &self,
        query: &str,
        limits: &GraphqlLimits,
    ) -> Result<Arc<ExecutableDocument>, ServerError> {
        let cacheable = query.len() <= MAX_CACHED_QUERY_BYTES;
        if cacheable {
            if let Some(document) = self.lock().get(query) {
                return Ok(document.clone());
            }
        }
        // Nesting is checked on the text first: the parser recurses over it.
        screen_text(query, limits)?;
        let document =
            Arc::new(parse_query(query).map_err(|e| ensure_code(e.into(), GRAPHQL_PARSE_FAILED))?);
        if cacheable {
            let mut parsed = self.lock();
            if parsed.len() >= MAX_ENTRIES {
                if let Some(victim) = parsed.keys().next().cloned() {
                    parsed.remove(&victim);
                }
            }
            parsed.insert(query.into(), document.clone());
        }
        Ok(document)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<ExecutableDocument>>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (each operation is one insert or remove), so a poisoned lock is used as is.
        self.parsed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_parsed_documents_and_stays_bounded() {
        let cache = DocumentCache::default();
        let limits = GraphqlLimits::default();
        let first = cache.parse("{ me { id } }", &limits).unwrap();
        let again = cache.parse("{ me { id } }", &limits).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(cache.parse("{ me { id ", &limits).is_err());
        assert_eq!(cache.len(), 1, "a document that does not parse is not kept");

        let long = format!("{{ me {{ id }} }} # {}", "x".repeat(MAX_CACHED_QUERY_BYTES));
        cache.parse(&long, &limits).unwrap();
        assert_eq!(cache.len(), 1, "a long document is parsed, not kept");

        for n in 0..MAX_ENTRIES + 10 {
            cache
                .parse(&format!("{{ a{n}: me {{ id }} }}"), &limits)
                .unwrap();
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
    }
}
