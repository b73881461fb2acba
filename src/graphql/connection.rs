//! Relay connections: one macro declares `XConnection` and `XEdge` for a node type, so every
//! list has the same shape (`edges { cursor node }`, `nodes`, `pageInfo`, `totalCount`).

pub use async_graphql::connection::PageInfo;

use super::ids::encode_cursor;
use crate::pagination::Page;

/// Paging info for a page whose items have the given IDs (ascending).
pub fn page_info<T>(page: &Page<T>, id_of: impl Fn(&T) -> i64) -> PageInfo {
    PageInfo {
        has_previous_page: page.has_previous_page,
        has_next_page: page.has_next_page,
        start_cursor: page.items.first().map(|item| encode_cursor(id_of(item))),
        end_cursor: page.items.last().map(|item| encode_cursor(id_of(item))),
    }
}

/// `connection_types!(UserConnection, UserEdge, User)` declares both types and
/// `UserConnection::from_page(page, id_of, wrap)`.
macro_rules! connection_types {
    ($connection:ident, $edge:ident, $node:ident) => {
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub page_info: $crate::graphql::connection::PageInfo,
            pub total_count: i64,
        }

        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        /// A page of a list (Relay connection): the items with their cursors, paging info and
        /// the number of matching items.
        #[async_graphql::Object]
        impl $connection {
            /// The items of this page, each with its cursor.
            async fn edges(&self) -> &Vec<$edge> {
                &self.edges
            }
            /// The items of this page.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|edge| &edge.node).collect()
            }
            /// Whether more pages exist, and the cursors to fetch them.
            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }
            /// Number of items matching the filter across all pages (counted only when asked for).
            async fn total_count(&self) -> i64 {
                self.total_count
            }
        }

        /// One item of a page with the cursor that points at it.
        #[async_graphql::Object]
        impl $edge {
            /// Opaque cursor for `after` / `before`.
            async fn cursor(&self) -> &str {
                &self.cursor
            }
            /// The item.
            async fn node(&self) -> &$node {
                &self.node
            }
        }

        impl $connection {
            #[allow(dead_code)]
            pub fn from_page<T>(
                page: $crate::pagination::Page<T>,
                id_of: impl Fn(&T) -> i64,
                wrap: impl Fn(T) -> $node,
            ) -> Self {
                let page_info = $crate::graphql::connection::page_info(&page, &id_of);
                let total_count = page.total_count;
                let edges = page
                    .items
                    .into_iter()
                    .map(|item| $edge {
                        cursor: $crate::graphql::ids::encode_cursor(id_of(&item)),
                        node: wrap(item),
                    })
                    .collect();
                $connection {
                    edges,
                    page_info,
                    total_count,
                }
            }

            /// From a page whose items already carry their cursors.
            #[allow(dead_code)]
            pub fn from_edges<T>(
                page: $crate::pagination::Page<(String, T)>,
                wrap: impl Fn(T) -> $node,
            ) -> Self {
                let page_info = $crate::graphql::connection::PageInfo {
                    has_previous_page: page.has_previous_page,
                    has_next_page: page.has_next_page,
                    start_cursor: page.items.first().map(|(cursor, _)| cursor.clone()),
                    end_cursor: page.items.last().map(|(cursor, _)| cursor.clone()),
                };
                $connection {
                    edges: page
                        .items
                        .into_iter()
                        .map(|(cursor, item)| $edge {
                            cursor,
                            node: wrap(item),
                        })
                        .collect(),
                    page_info,
                    total_count: page.total_count,
                }
            }
        }
    };
}

pub(crate) use connection_types;
