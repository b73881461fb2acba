//! The permission matrix, for every kind of CRM record: member / manager / admin × their own
//! record / one assigned to them / someone else's / another workspace's, for read, list,
//! statistics, nested fields, update, bulk update, delete, bulk delete and restore. A record
//! outside the caller's scope is NOT_FOUND (null in a nested field, absent from lists and
//! counts) and a refused change writes nothing.

use serde_json::{json, Value};

use crate::harness::*;

/// One kind of record and how the API names its parts.
struct Kind {
    /// `lead`: the single field and payload field.
    one: &'static str,
    /// `Lead`: the type, and the stem of its mutations.
    type_name: &'static str,
    /// `Leads`: the stem of its bulk mutations (the list field is its lower-case form).
    many: &'static str,
    /// A valid input for a new record.
    input: fn() -> Value,
    /// The input field naming the owner.
    owner_field: &'static str,
    /// Whether the kind has an assignee.
    assignable: bool,
    /// The column (and input field, in camel case) an update changes.
    column: &'static str,
    field: &'static str,
    /// Statistics over the kind narrowed by a filter: (query field, count selection).
    stats: Option<(&'static str, &'static str)>,
    /// The `Task` field pointing at a record of this kind.
    from_task: Option<&'static str>,
}

const KINDS: [Kind; 5] = [
    Kind {
        one: "lead",
        type_name: "Lead",
        many: "Leads",
        input: || json!({ "firstName": "Record" }),
        owner_field: "ownerId",
        assignable: true,
        column: "notes",
        field: "notes",
        stats: Some(("leadStats", "total")),
        from_task: Some("lead"),
    },
    Kind {
        one: "contact",
        type_name: "Contact",
        many: "Contacts",
        input: || json!({ "firstName": "Record" }),
        owner_field: "ownerId",
        assignable: true,
        column: "notes",
        field: "notes",
        stats: Some(("contactStats", "total")),
        from_task: Some("contact"),
    },
    Kind {
        one: "company",
        type_name: "Company",
        many: "Companies",
        input: || json!({ "name": "Record Inc" }),
        owner_field: "ownerId",
        assignable: false,
        column: "notes",
        field: "notes",
        stats: None,
        from_task: Some("company"),
    },
    Kind {
        one: "opportunity",
        type_name: "Opportunity",
        many: "Opportunities",
        input: || json!({ "name": "Record deal", "amount": "100.00" }),
        owner_field: "ownerId",
        assignable: true,
        column: "description",
        field: "description",
        stats: Some(("opportunityPipeline", "count")),
        from_task: Some("opportunity"),
    },
    Kind {
        one: "task",
        type_name: "Task",
        many: "Tasks",
        input: || json!({ "title": "Record task" }),
        owner_field: "createdById",
        assignable: true,
        column: "description",
        field: "description",
        stats: Some(("taskStats", "total")),
        from_task: None,
    },
];

impl Kind {
    fn table(&self) -> String {
        self.many.to_lowercase()
    }
}

/// Whose record it is, seen from the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Whose {
    Own,
    AssignedToMe,
    SomeoneElses,
    OtherWorkspace,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Member,
    Manager,
    Admin,
}

impl Whose {
    fn visible_to(self, role: Role) -> bool {
        match self {
            Whose::Own | Whose::AssignedToMe => true,
            Whose::SomeoneElses => role != Role::Member,
            Whose::OtherWorkspace => false,
        }
    }
}

struct World {
    app: TestApp,
    admin: String,
    /// The other workspace's admin.
    foreign: String,
    /// The colleague who owns "someone else's" records.
    colleague_id: String,
    callers: Vec<(Role, String, String)>,
}

impl World {
    async fn new() -> World {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        let admin_id = app.gql(Some(&admin), "{ me { id } }", json!({})).await["data"]["me"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (manager_id, manager) = app.user_with_role("max@example.com", "MANAGER").await;
        let (member_id, member) = app.user_with_role("mia@example.com", "MEMBER").await;
        let (colleague_id, _) = app.user_with_role("sam@example.com", "MEMBER").await;
        let other = app
            .other_workspace("Other", "o@other.test", "other-password")
            .await;
        assert!(other["errors"].is_null(), "{other}");
        let foreign = token_of(&app.login("o@other.test", "other-password").await);
        World {
            app,
            admin: admin.clone(),
            foreign,
            colleague_id,
            callers: vec![
                (Role::Member, member, member_id),
                (Role::Manager, manager, manager_id),
                (Role::Admin, admin, admin_id),
            ],
        }
    }

    async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.app.gql(Some(token), query, variables).await
    }

    /// A new record of `kind` that is `whose` for the caller (`me`, with `token`).
    async fn record(&self, kind: &Kind, whose: Whose, token: &str, me: &str) -> String {
        let mut input = (kind.input)();
        let creator = match whose {
            Whose::Own => token,
            Whose::AssignedToMe => {
                input[kind.owner_field] = json!(self.colleague_id);
                input["assignedToId"] = json!(me);
                &self.admin
            }
            Whose::SomeoneElses => {
                input[kind.owner_field] = json!(self.colleague_id);
                &self.admin
            }
            Whose::OtherWorkspace => &self.foreign,
        };
        let created = self
            .gql(
                creator,
                &format!(
                    "mutation($i: {t}Input!) {{ create{t}(input: $i) {{ {one} {{ id }} }} }}",
                    t = kind.type_name,
                    one = kind.one
                ),
                json!({ "i": input }),
            )
            .await;
        created["data"][format!("create{}", kind.type_name)][kind.one]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{} {whose:?}: {created}", kind.one))
            .to_string()
    }

    /// `delete<Kind>` or `restore<Kind>` of one record.
    async fn one(&self, token: &str, verb: &str, kind: &Kind, id: &str) -> Value {
        let query = format!(
            "mutation($id: ID!) {{ {verb}{t}(id: $id) {{ {one} {{ id }} }} }}",
            t = kind.type_name,
            one = kind.one
        );
        self.gql(token, &query, json!({ "id": id })).await
    }

    async fn column(&self, kind: &Kind, id: &str, column: &str) -> Value {
        self.app
            .rows(&format!(
                "SELECT {column} AS v FROM {} WHERE id = {id}",
                kind.table()
            ))
            .await[0]["v"]
            .clone()
    }
}

/// Asserts an answer is a success (`allowed`) or NOT_FOUND.
fn expect(answer: &Value, allowed: bool, what: &str) {
    if allowed {
        assert!(answer["errors"].is_null(), "{what}: {answer}");
    } else {
        assert_eq!(error_code(answer), "NOT_FOUND", "{what}: {answer}");
    }
}

/// One cell of the matrix: a caller, a kind of record, and whose record it is to them.
struct Case<'a> {
    kind: &'a Kind,
    token: &'a str,
    /// The caller's user ID.
    me: &'a str,
    whose: Whose,
    /// Whether the caller may see and change it.
    allowed: bool,
    /// How failures name the cell.
    label: String,
}

#[tokio::test]
async fn everyone_sees_and_changes_exactly_their_scope() {
    let world = World::new().await;
    for kind in &KINDS {
        for (role, token, me) in &world.callers {
            for whose in [
                Whose::Own,
                Whose::AssignedToMe,
                Whose::SomeoneElses,
                Whose::OtherWorkspace,
            ] {
                if whose == Whose::AssignedToMe && !kind.assignable {
                    continue;
                }
                let case = Case {
                    kind,
                    token,
                    me,
                    whose,
                    allowed: whose.visible_to(*role),
                    label: format!("{} {role:?} {whose:?}", kind.one),
                };
                check_reads(&world, &case).await;
                check_changes(&world, &case).await;
            }
        }
    }
}

async fn check_reads(world: &World, case: &Case<'_>) {
    let &Case {
        kind,
        token,
        me,
        whose,
        allowed,
        ref label,
    } = case;
    let case = label;
    let id = world.record(kind, whose, token, me).await;
    let read = world
        .gql(
            token,
            &format!(
                "query($id: ID!) {{ {one}(id: $id) {{ id }} }}",
                one = kind.one
            ),
            json!({ "id": id }),
        )
        .await;
    expect(&read, allowed, &format!("{case}: read"));
    if allowed {
        assert_eq!(read["data"][kind.one]["id"], id.as_str(), "{case}");
    }

    let filter = json!({ "f": { "id": { "eq": id } } });
    let list = world
        .gql(
            token,
            &format!(
                "query($f: {t}Filter) {{ {field}(filter: $f) {{ totalCount }} }}",
                t = kind.type_name,
                field = kind.many.to_lowercase()
            ),
            filter.clone(),
        )
        .await;
    assert_eq!(
        list["data"][kind.many.to_lowercase()]["totalCount"],
        allowed as i64,
        "{case}: list {list}"
    );

    if let Some((stats, count)) = kind.stats {
        let answer = world
            .gql(
                token,
                &format!(
                    "query($f: {t}Filter) {{ {stats}(filter: $f) {{ {count} }} }}",
                    t = kind.type_name
                ),
                filter,
            )
            .await;
        assert_eq!(
            answer["data"][stats][count], allowed as i64,
            "{case}: statistics {answer}"
        );
    }

    // A task the caller owns, pointing at the record: the link shows only what they may see.
    // (A task cannot point at another workspace's record at all.)
    if let (Some(link), true) = (kind.from_task, whose != Whose::OtherWorkspace) {
        let task = world
            .gql(
                &world.admin,
                "mutation($i: TaskInput!) { createTask(input: $i) { task { id } } }",
                json!({ "i": { "title": "Linked", "createdById": me, format!("{link}Id"): id } }),
            )
            .await;
        let task_id = task["data"]["createTask"]["task"]["id"].clone();
        assert!(task_id.is_string(), "{case}: {task}");
        let nested = world
            .gql(
                token,
                &format!("query($id: ID!) {{ task(id: $id) {{ {link} {{ id }} }} }}"),
                json!({ "id": task_id }),
            )
            .await;
        assert!(nested["errors"].is_null(), "{case}: nested {nested}");
        let seen = &nested["data"]["task"][link]["id"];
        if allowed {
            assert_eq!(seen, id.as_str(), "{case}: nested");
        } else {
            assert!(seen.is_null(), "{case}: nested {nested}");
        }
    }
}

async fn check_changes(world: &World, case: &Case<'_>) {
    let &Case {
        kind,
        token,
        me,
        whose,
        allowed,
        ref label,
    } = case;
    let case = label;
    let t = kind.type_name;
    let one = kind.one;
    let id = world.record(kind, whose, token, me).await;

    let update = world
        .gql(
            token,
            &format!(
                "mutation($id: ID!, $i: {t}Input!) {{ update{t}(id: $id, input: $i) {{ {one} {{ id }} }} }}"
            ),
            json!({ "id": id, "i": { kind.field: "changed once" } }),
        )
        .await;
    expect(&update, allowed, &format!("{case}: update"));
    let bulk = world
        .gql(
            token,
            &format!(
                "mutation($ids: [ID!], $p: {t}Input!) {{ bulkUpdate{m}(ids: $ids, patch: $p) {{ count }} }}",
                m = kind.many
            ),
            json!({ "ids": [id], "p": { kind.field: "changed twice" } }),
        )
        .await;
    expect(&bulk, allowed, &format!("{case}: bulk update"));
    let value = world.column(kind, &id, kind.column).await;
    if allowed {
        assert_eq!(bulk["data"][format!("bulkUpdate{}", kind.many)]["count"], 1);
        assert_eq!(value, "changed twice", "{case}");
    } else {
        assert!(value.is_null(), "{case}: written {value}");
    }

    let delete = world.one(token, "delete", kind, &id).await;
    expect(&delete, allowed, &format!("{case}: delete"));
    let deleted = world.column(kind, &id, "deleted_at").await;
    assert_eq!(
        deleted.is_null(),
        !allowed,
        "{case}: delete wrote {deleted}"
    );
    if !allowed {
        // Deleted by someone who may, then restored by the caller: refused, stays deleted.
        let deleter = if whose == Whose::OtherWorkspace {
            &world.foreign
        } else {
            &world.admin
        };
        world.one(deleter, "delete", kind, &id).await;
    }
    let restore = world.one(token, "restore", kind, &id).await;
    expect(&restore, allowed, &format!("{case}: restore"));
    let deleted = world.column(kind, &id, "deleted_at").await;
    assert_eq!(
        deleted.is_null(),
        allowed,
        "{case}: restore wrote {deleted}"
    );

    let other = world.record(kind, whose, token, me).await;
    let bulk_delete = world
        .gql(
            token,
            &format!(
                "mutation($ids: [ID!]) {{ bulkDelete{m}(ids: $ids) {{ count }} }}",
                m = kind.many
            ),
            json!({ "ids": [other] }),
        )
        .await;
    expect(&bulk_delete, allowed, &format!("{case}: bulk delete"));
    let deleted = world.column(kind, &other, "deleted_at").await;
    assert_eq!(
        deleted.is_null(),
        !allowed,
        "{case}: bulk delete wrote {deleted}"
    );
}
