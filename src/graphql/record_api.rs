//! The queries and mutations every CRM record kind has — `x(id)`, `xs(...)`, `createX`,
//! `updateX`, `deleteX`, `restoreX`, `bulkUpdateXs`, `bulkDeleteXs` — written once. Each record module
//! declares its types (object, filter, input, order field) and invokes [`record_api!`].

/// Declares `$Query`, `$Mutation` and `$Payload` for one record kind.
macro_rules! record_api {
    (
        object: $Obj:ident, domain: $Dom:ty, what: $what:literal,
        filter: $Filter:ty, order: $Order:ty, default_sort: $sort:expr, input: $Input:ty,
        connection: $Conn:ident, payload: $Payload:ident { $field:ident },
        query: $Query:ident { $get:ident: $get_doc:literal, $list:ident: $list_doc:literal, search: $search_doc:literal $(,)? },
        mutation: $Mutation:ident {
            $create:ident: $create_doc:literal,
            $update:ident,
            $delete:ident,
            $restore:ident,
            $bulk_update:ident,
            $bulk_delete:ident,
        },
        service: { $svc_create:ident },
    ) => {
        #[doc = concat!("The result of a mutation on a ", $what, ".")]
        #[derive(async_graphql::SimpleObject)]
        pub struct $Payload {
            #[doc = concat!("The ", $what, " as it is now.")]
            pub $field: $Obj,
        }

        #[derive(Default)]
        pub struct $Query;

        #[async_graphql::Object]
        impl $Query {
            #[doc = $get_doc]
            async fn $get(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "The record's ID.")] id: async_graphql::ID,
            ) -> async_graphql::Result<$Obj> {
                use $crate::graphql::errors::GqlResultExt;
                let viewer = $crate::graphql::context::viewer(ctx)?;
                let id = $crate::graphql::ids::parse_id("id", &id).gql()?;
                $crate::graphql::context::app(ctx).crm.record::<$Dom>(viewer, id).await.map($Obj).gql()
            }

            #[doc = $list_doc]
            #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(1, 500) as usize * child_complexity")]
            #[allow(clippy::too_many_arguments)]
            async fn $list(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "Narrow the list.")] filter: Option<$Filter>,
                #[graphql(desc = $search_doc)] search: Option<String>,
                #[graphql(desc = "Sort keys, first one first (at most 3); ties are broken by ID.")]
                order_by: Option<Vec<$crate::graphql::filters::OrderBy<$Order>>>,
                #[graphql(desc = "Page size from the start (1-500, default 20).")] first: Option<i32>,
                #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
                #[graphql(desc = "Page size from the end (1-500).")] last: Option<i32>,
                #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
            ) -> async_graphql::Result<$Conn> {
                use $crate::graphql::errors::GqlResultExt;
                let viewer = $crate::graphql::context::viewer(ctx)?;
                let page = $crate::pagination::PageArgs { first, after, last, before };
                // Counting all matches costs a second query; only when the client asks.
                let count = ctx.look_ahead().field("totalCount").exists();
                let query = $crate::graphql::filters::list_query(
                    viewer, filter, search, order_by, $sort, page, count,
                )
                .gql()?;
                let page = $crate::graphql::context::app(ctx).crm.records::<$Dom>(viewer, &query).await.gql()?;
                let rows: Vec<&$Dom> = page.items.iter().map(|(_, row)| row).collect();
                $Obj::prefetch(ctx, &rows).await?;
                Ok($Conn::from_edges(page, $Obj))
            }
        }

        #[derive(Default)]
        pub struct $Mutation;

        #[async_graphql::Object]
        impl $Mutation {
            #[doc = $create_doc]
            async fn $create(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "The new record.")] input: $Input,
            ) -> async_graphql::Result<$Payload> {
                use $crate::graphql::errors::GqlResultExt;
                let viewer = $crate::graphql::context::viewer(ctx)?;
                let input = input.into_domain().gql()?;
                let record = $crate::graphql::context::app(ctx).crm.$svc_create(viewer, input).await.gql()?;
                Ok($Payload { $field: $Obj(record) })
            }

            #[doc = concat!("Changes the given fields of a ", $what, ".")]
            async fn $update(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "The record's ID.")] id: async_graphql::ID,
                #[graphql(desc = "The fields to change.")] input: $Input,
            ) -> async_graphql::Result<$Payload> {
                use $crate::graphql::errors::GqlResultExt;
                let viewer = $crate::graphql::context::viewer(ctx)?;
                let id = $crate::graphql::ids::parse_id("id", &id).gql()?;
                let input = input.into_domain().gql()?;
                let record = $crate::graphql::context::app(ctx).crm.update::<$Dom>(viewer, id, input).await.gql()?;
                Ok($Payload { $field: $Obj(record) })
            }

            #[doc = concat!("Deletes a ", $what, " (it can be restored).")]
            async fn $delete(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "The record's ID.")] id: async_graphql::ID,
            ) -> async_graphql::Result<$Payload> {
                use $crate::graphql::errors::GqlResultExt;
                let viewer = $crate::graphql::context::viewer(ctx)?;
                let id = $crate::graphql::ids::parse_id("id", &id).gql()?;
                let record = $crate::graphql::context::app(ctx).crm.set_deleted::<$Dom>(viewer, id, true).await.gql()?;
                Ok($Payload { $field: $Obj(record) })
            }

            #[doc = concat!("Brings a deleted ", $what, " back.")]
            async fn $restore(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "The record's ID.")] id: async_graphql::ID,
            ) -> async_graphql::Result<$Payload> {
                use $crate::graphql::errors::GqlResultExt;
                let viewer = $crate::graphql::context::viewer(ctx)?;
                let id = $crate::graphql::ids::parse_id("id", &id).gql()?;
                let record = $crate::graphql::context::app(ctx).crm.set_deleted::<$Dom>(viewer, id, false).await.gql()?;
                Ok($Payload { $field: $Obj(record) })
            }

            #[doc = "Applies one patch to the records of this kind given by `ids` or matching `filter`, in one transaction, and returns how many changed. The patch is validated as a single update would be; an invalid field, an ID you cannot see or a rule one record would break changes nothing."]
            async fn $bulk_update(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "The records to change.")] ids: Option<Vec<async_graphql::ID>>,
                #[graphql(desc = "Or: every record matching this filter.")] filter: Option<$Filter>,
                #[graphql(desc = "The fields to change.")] patch: $Input,
            ) -> async_graphql::Result<$crate::graphql::filters::BulkPayload> {
                use $crate::graphql::errors::GqlResultExt;
                let viewer = $crate::graphql::context::viewer(ctx)?;
                let selection = $crate::graphql::filters::selection(viewer, ids, filter).gql()?;
                let patch = patch.into_domain().gql()?;
                let count = $crate::graphql::context::app(ctx)
                    .crm
                    .bulk_update::<$Dom>(viewer, selection, patch)
                    .await
                    .gql()?;
                Ok($crate::graphql::filters::BulkPayload::of(count))
            }

            #[doc = concat!("Deletes (restorably) the records of this kind given by `ids` or matching `filter`, in one transaction; any ID you cannot see makes it fail with NOT_FOUND and change nothing.")]
            async fn $bulk_delete(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "The records to delete.")] ids: Option<Vec<async_graphql::ID>>,
                #[graphql(desc = "Or: every record matching this filter.")] filter: Option<$Filter>,
            ) -> async_graphql::Result<$crate::graphql::filters::BulkPayload> {
                use $crate::graphql::errors::GqlResultExt;
                let viewer = $crate::graphql::context::viewer(ctx)?;
                let selection = $crate::graphql::filters::selection(viewer, ids, filter).gql()?;
                let count = $crate::graphql::context::app(ctx)
                    .crm
                    .bulk_delete::<$Dom>(viewer, selection)
                    .await
                    .gql()?;
                Ok($crate::graphql::filters::BulkPayload::of(count))
            }
        }
    };
}

pub(crate) use record_api;
