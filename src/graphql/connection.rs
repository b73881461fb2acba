//! Relay connections: one macro declares `XConnection` and `XEdge` for a node type, so every
//! list has the same shape (`edges { cursor node }`, `nodes`, `pageInfo`, `totalCount`).

pub use async_graphql::connection::PageInfo;

use super::ids::encode_cursor;
use crate::crm::query::Cursor;
use crate::notifications::timeline::TimelineCursor;
use crate::pagination::Page;

/// Where an edge sits, encoded into its opaque cursor only when a client asks for it (most
/// pages never select `cursor`, and encoding one per row was 2–3% of a page's server time).
pub enum EdgeCursor {
    /// Lists ordered by ID alone.
    Id(i64),
    /// CRM lists: the row's sort-key values and ID.
    Keyed(Cursor),
    /// A record's timeline: the entry's time, kind and ID.
    Timeline(TimelineCursor),
}

impl EdgeCursor {
    pub fn encode(&self) -> String {
        match self {
            EdgeCursor::Id(id) => encode_cursor(*id),
            EdgeCursor::Keyed(cursor) => cursor.encode(),
            EdgeCursor::Timeline(cursor) => cursor.encode(),
        }
    }
}

/// Paging info for a page whose first and last items sit at `first` and `last`.
pub fn page_info<T>(
    page: &Page<T>,
    first: Option<&EdgeCursor>,
    last: Option<&EdgeCursor>,
) -> PageInfo {
    PageInfo {
        has_previous_page: page.has_previous_page,
        has_next_page: page.has_next_page,
        start_cursor: first.map(EdgeCursor::encode),
        end_cursor: last.map(EdgeCursor::encode),
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
            pub cursor: $crate::graphql::connection::EdgeCursor,
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
            async fn cursor(&self) -> String {
                self.cursor.encode()
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
                use $crate::graphql::connection::EdgeCursor;
                let page = page.map(|item| (EdgeCursor::Id(id_of(&item)), item));
                Self::from_cursors(page, wrap)
            }

            /// From a page of the CRM's list engine, whose rows carry their sort keys.
            #[allow(dead_code)]
            pub fn from_edges<T>(
                page: $crate::pagination::Page<($crate::crm::query::Cursor, T)>,
                wrap: impl Fn(T) -> $node,
            ) -> Self {
                use $crate::graphql::connection::EdgeCursor;
                Self::from_cursors(
                    page.map(|(cursor, item)| (EdgeCursor::Keyed(cursor), item)),
                    wrap,
                )
            }

            /// From a page whose items come with their positions.
            #[allow(dead_code)]
            pub fn from_cursors<T>(
                page: $crate::pagination::Page<($crate::graphql::connection::EdgeCursor, T)>,
                wrap: impl Fn(T) -> $node,
            ) -> Self {
                let page_info = $crate::graphql::connection::page_info(
                    &page,
                    page.items.first().map(|(cursor, _)| cursor),
                    page.items.last().map(|(cursor, _)| cursor),
                );
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
