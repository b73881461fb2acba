//! The floor under issue 3's read benchmark that the fixed stack sets: how long async-graphql
//! alone takes to execute the contacts page document and turn the answer into JSON, with the
//! 50 rows, their companies and owners already in memory (no database, no HTTP, no auth, no
//! loaders, no schema extension, the document parsed once) on one thread.
//!
//! Whatever MyCRM does around it (HTTP, the session check, SQL, row decoding) comes on top, so
//! 1 / (this time + PostgreSQL's time for the page) bounds the requests per second one core can
//! serve. `bash bench/crm_read.sh` runs it next to PostgreSQL's own time for the page.
//!
//! Run: `cargo run --release --example graphql_floor [-- <iterations>]`

use std::sync::Arc;
use std::time::Instant;

use async_graphql::parser::parse_query;
use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Request, Schema, ID};

// The server's allocator, so the figure is the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The benchmark's document, as `bench/crm_read.sh` sends it.
const PAGE: &str = "{ contacts(first: 50, orderBy: [{field: CREATED_AT, direction: DESC}]) \
    { edges { node { id firstName email company { name } owner { email } } } } }";

struct Company {
    name: String,
}

struct User {
    email: String,
}

/// A contact row as a page holds it: its own columns plus the two to-one relations, already
/// loaded (the most favourable case for the executor: no loader lookups at all).
struct Contact {
    id: i64,
    first_name: String,
    email: String,
    company: Option<Arc<Company>>,
    owner: Option<Arc<User>>,
}

#[Object]
impl Company {
    async fn name(&self) -> &str {
        &self.name
    }
}

#[Object]
impl User {
    async fn email(&self) -> &str {
        &self.email
    }
}

#[Object]
impl Contact {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    async fn first_name(&self) -> &str {
        &self.first_name
    }
    async fn email(&self) -> &str {
        &self.email
    }
    async fn company(&self) -> Option<&Company> {
        self.company.as_deref()
    }
    async fn owner(&self) -> Option<&User> {
        self.owner.as_deref()
    }
}

struct Edge<'a>(&'a Contact);

#[Object]
impl Edge<'_> {
    async fn node(&self) -> &Contact {
        self.0
    }
}

struct ContactConnection<'a>(&'a [Contact]);

#[Object]
impl ContactConnection<'_> {
    async fn edges(&self) -> Vec<Edge<'_>> {
        self.0.iter().map(Edge).collect()
    }
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
enum SortField {
    CreatedAt,
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Asc,
    Desc,
}

#[derive(async_graphql::InputObject)]
struct Sort {
    field: SortField,
    direction: Direction,
}

struct Query;

#[Object]
impl Query {
    async fn contacts<'a>(
        &self,
        ctx: &Context<'a>,
        first: i32,
        order_by: Vec<Sort>,
    ) -> ContactConnection<'a> {
        let _ = (first, order_by);
        ContactConnection(ctx.data_unchecked::<Vec<Contact>>())
    }
}

fn page() -> Vec<Contact> {
    (0..50)
        .map(|i| Contact {
            id: 100_000 - i,
            first_name: format!("Olivia{i}"),
            email: format!("olivia.lewis{i}@example.com"),
            company: Some(Arc::new(Company {
                name: format!("Acme Corporation {}", i % 7),
            })),
            owner: Some(Arc::new(User {
                email: format!("user{}@demo.mycrm.example", i % 3),
            })),
        })
        .collect()
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(page())
        .finish();
    let document = parse_query(PAGE).expect("the page document parses");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let run = || async {
        let mut request = Request::new(PAGE);
        request.set_parsed_query(document.clone());
        let response = schema.execute(request).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        serde_json::to_vec(&response).expect("JSON").len()
    };
    let bytes = runtime.block_on(run());
    // Warm up the allocator and caches, then measure.
    runtime.block_on(async {
        for _ in 0..iterations / 10 {
            run().await;
        }
    });
    let started = Instant::now();
    runtime.block_on(async {
        for _ in 0..iterations {
            run().await;
        }
    });
    let per_request = started.elapsed().as_secs_f64() / iterations as f64;
    println!(
        "async-graphql alone, contacts page (50 rows, {bytes} bytes of JSON): \
         {:.1} µs per request, {:.0} requests/s on one core ({iterations} iterations)",
        per_request * 1e6,
        1.0 / per_request
    );
}
