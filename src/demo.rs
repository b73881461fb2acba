//! `mycrm demo`: loads a realistic demo workspace so the playground (and the benchmarks) have
//! something to show: three users (admin, manager, member), companies with contacts, leads in
//! every status, opportunities across the pipeline, tasks (some overdue), activities, and a few
//! leads converted through the real conversion path.
//!
//! Rows are generated inside PostgreSQL (`generate_series`) in batches, so 100,000 leads take
//! seconds; the random generator is seeded, so two runs give the same data. Every value
//! respects the same constraints the API enforces (the tables' CHECKs are the backstop).

use chrono::Utc;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::app::App;
use crate::auth::{CreateUser, Role, SignUp, User, Viewer};
use crate::crm::conversion::ConvertLead;
use crate::crm::leads::LeadId;
use crate::crm::opportunities::Stage;
use crate::error::AppResult;

/// How many records of each kind to create.
#[derive(Debug, Clone, Copy)]
pub struct DemoSize {
    pub companies: i64,
    pub contacts: i64,
    pub leads: i64,
    pub opportunities: i64,
    pub tasks: i64,
    pub activities: i64,
    /// Qualified leads converted through `convertLead`'s code path.
    pub conversions: i64,
}

impl Default for DemoSize {
    fn default() -> Self {
        DemoSize {
            companies: 150,
            contacts: 600,
            leads: 1_000,
            opportunities: 300,
            tasks: 400,
            activities: 2_000,
            conversions: 25,
        }
    }
}

/// Who to create.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub workspace_name: String,
    /// The users are ada@, max@ and mia@ this domain.
    pub email_domain: String,
    /// The password of all three users.
    pub password: String,
    pub size: DemoSize,
}

/// What was created.
#[derive(Debug)]
pub struct DemoWorkspace {
    pub users: Vec<User>,
    pub converted: i64,
}

/// Rows per INSERT statement: large enough to be fast, small enough to report progress.
const BATCH: i64 = 10_000;

/// Creates the demo workspace. `progress(step, done, total)` is called after every batch.
pub async fn load(
    app: &App,
    options: &DemoOptions,
    mut progress: impl FnMut(&str, i64, i64),
) -> AppResult<DemoWorkspace> {
    let domain = options.email_domain.trim().trim_start_matches('@');
    let admin = app
        .auth
        .create_workspace(SignUp {
            workspace_name: options.workspace_name.clone(),
            name: "Ada Park".into(),
            email: format!("ada@{domain}"),
            password: options.password.clone(),
        })
        .await?;
    let mut users = vec![admin.clone()];
    for (name, email, role) in [
        ("Max Meyer", "max", Role::Manager),
        ("Mia Chen", "mia", Role::Member),
    ] {
        let user = app
            .auth
            .create_user_in(
                admin.workspace_id,
                CreateUser {
                    email: format!("{email}@{domain}"),
                    name: name.into(),
                    role,
                    password: options.password.clone(),
                },
            )
            .await?;
        users.push(user);
    }
    let ids: Vec<i64> = users.iter().map(|u| u.id.0).collect();
    let workspace = admin.workspace_id.0;
    let size = options.size;

    let mut conn = app.db.get().await?;
    // Each step is one large INSERT ... SELECT: the request path's statement timeout does
    // not apply to generating a demo workspace.
    diesel::sql_query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await?;
    diesel::sql_query("SELECT setseed(0.42)")
        .execute(&mut conn)
        .await?;
    let steps: [(&str, i64, String); 6] = [
        ("companies", size.companies, companies_sql()),
        ("contacts", size.contacts, contacts_sql()),
        ("leads", size.leads, leads_sql()),
        ("opportunities", size.opportunities, opportunities_sql()),
        ("tasks", size.tasks, tasks_sql()),
        ("activities", size.activities, activities_sql()),
    ];
    for (step, total, sql) in &steps {
        let mut done = 0;
        while done < *total {
            let upto = (done + BATCH).min(*total);
            insert_batch(&mut conn, sql, workspace, &ids, done + 1, upto).await?;
            done = upto;
            progress(step, done, *total);
        }
    }
    diesel::sql_query(LAST_CONTACTED)
        .bind::<BigInt, _>(workspace)
        .execute(&mut conn)
        .await?;
    for table in [
        "companies",
        "contacts",
        "leads",
        "opportunities",
        "tasks",
        "activities",
    ] {
        diesel::sql_query(format!("ANALYZE {table}"))
            .execute(&mut conn)
            .await?;
    }
    drop(conn);

    let converted = convert_some(app, &admin, size.conversions).await?;
    progress("conversions", converted, size.conversions);
    Ok(DemoWorkspace { users, converted })
}

async fn insert_batch(
    conn: &mut AsyncPgConnection,
    sql: &str,
    workspace: i64,
    users: &[i64],
    from: i64,
    to: i64,
) -> AppResult<()> {
    diesel::sql_query(sql)
        .bind::<BigInt, _>(workspace)
        .bind::<BigInt, _>(users[0])
        .bind::<BigInt, _>(users[1])
        .bind::<BigInt, _>(users[2])
        .bind::<BigInt, _>(from)
        .bind::<BigInt, _>(to)
        .execute(conn)
        .await?;
    Ok(())
}

/// Converts the oldest qualified leads that have an email and a company, as the admin would.
async fn convert_some(app: &App, admin: &User, wanted: i64) -> AppResult<i64> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let mut conn = app.db.get().await?;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT id FROM leads WHERE workspace_id = $1 AND status = 'qualified' \
         AND email IS NOT NULL AND company_name IS NOT NULL ORDER BY id LIMIT $2",
    )
    .bind::<BigInt, _>(admin.workspace_id.0)
    .bind::<BigInt, _>(wanted)
    .load(&mut conn)
    .await?;
    drop(conn);
    let viewer = Viewer {
        user_id: admin.id,
        workspace_id: admin.workspace_id,
        role: Role::Admin,
        email: admin.email.clone(),
        session_id: uuid::Uuid::nil(),
        token_expires_at: Utc::now() + chrono::Duration::hours(1),
        workflow_run: None,
    };
    let mut converted = 0;
    for row in rows {
        app.crm
            .convert_lead(&viewer, LeadId(row.id), ConvertLead::default())
            .await?;
        converted += 1;
    }
    Ok(converted)
}

/// `ARRAY['a', 'b']` for constant word lists (no quotes inside, checked).
fn words(list: &[&str]) -> String {
    assert!(list.iter().all(|w| !w.contains('\'')));
    let quoted: Vec<String> = list.iter().map(|w| format!("'{w}'")).collect();
    format!("ARRAY[{}]", quoted.join(", "))
}

/// A random element of a constant word list, per row.
fn pick(list: &[&str]) -> String {
    format!(
        "({})[1 + floor(random() * {})::int]",
        words(list),
        list.len()
    )
}

/// The users by weight: admin 1, manager 1, member 2 (members own most of the day-to-day).
const ANY_OWNER: &str = "(ARRAY[$2, $3, $4, $4]::bigint[])[1 + floor(random() * 4)::int]";
/// A member assignee for some rows.
const SOME_ASSIGNEE: &str = "CASE WHEN random() < 0.4 THEN $4 END";

const FIRST_NAMES: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mateo", "Amelia", "Ethan", "Harper", "Aiden", "Evelyn", "Leo", "Aria", "Omar", "Yuki",
    "Priya", "Chen", "Fatima", "Diego", "Ingrid", "Kwame", "Sofia", "Hannah", "Raj", "Lena",
    "Tomas", "Zara", "Marco", "Nora", "Ali", "Grace", "Felix", "Chloe", "Ivan",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Garcia", "Brown", "Jones", "Miller", "Davis", "Martinez", "Lopez",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Perez",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Nguyen",
    "Kim", "Patel", "Schmidt", "Rossi", "Dubois", "Silva", "Okafor", "Novak", "Larsen", "Sato",
    "Cohen", "Murphy", "Khan",
];
const COMPANY_WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Aperture",
    "Gringotts",
    "Oscorp",
    "Monarch",
    "Pied Piper",
    "Dunder",
    "Massive",
    "Nakatomi",
    "Blue Sun",
    "Sirius",
    "Virtucon",
    "Zorg",
    "Prestige",
    "Bluth",
    "Ollivander",
    "Kaiju",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Adatum",
    "Proseware",
    "Lucerne",
    "Wingtip",
    "Alpine",
    "Coho",
    "Fourth",
];
const COMPANY_SUFFIXES: &[&str] = &[
    "Corporation",
    "Industries",
    "Labs",
    "Systems",
    "Group",
    "Holdings",
    "Technologies",
    "Partners",
    "Logistics",
    "Foods",
    "Energy",
    "Health",
    "Media",
    "Robotics",
    "Analytics",
];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Manufacturing",
    "Healthcare",
    "Finance",
    "Retail",
    "Education",
    "Logistics",
    "Energy",
    "Media",
    "Hospitality",
];
const CITIES: &[(&str, &str)] = &[
    ("Austin", "TX"),
    ("Boston", "MA"),
    ("Chicago", "IL"),
    ("Denver", "CO"),
    ("Seattle", "WA"),
    ("Atlanta", "GA"),
    ("Miami", "FL"),
    ("Portland", "OR"),
    ("San Diego", "CA"),
    ("New York", "NY"),
];
const JOB_TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "VP Sales",
    "Head of Marketing",
    "Operations Manager",
    "Procurement Lead",
    "IT Director",
    "Product Manager",
    "Founder",
    "CFO",
];
const DEPARTMENTS: &[&str] = &[
    "Sales",
    "Marketing",
    "IT",
    "Finance",
    "Operations",
    "Executive",
];
const PRODUCTS: &[&str] = &[
    "Platform licence",
    "Annual renewal",
    "Pilot",
    "Expansion",
    "Support plan",
    "Onboarding",
    "Enterprise seats",
];

/// A company name for row `i`, unique per `i`: word × suffix, numbered after that.
fn company_name(index: &str) -> String {
    let stems = COMPANY_WORDS.len();
    let suffixes = COMPANY_SUFFIXES.len();
    format!(
        "({w})[1 + {index} % {stems}] || ' ' || ({s})[1 + ({index} / {stems}) % {suffixes}] \
         || CASE WHEN {index} >= {all} THEN ' ' || ({index} / {all} + 1) ELSE '' END",
        w = words(COMPANY_WORDS),
        s = words(COMPANY_SUFFIXES),
        all = stems * suffixes,
    )
}

/// When a row was created: some time in the last 400 days.
const CREATED: &str = "now() - random() * interval '400 days'";

fn companies_sql() -> String {
    let cities: Vec<&str> = CITIES.iter().map(|c| c.0).collect();
    let states: Vec<&str> = CITIES.iter().map(|c| c.1).collect();
    format!(
        "INSERT INTO companies (workspace_id, name, domain, industry, employee_count, \
           annual_revenue, phone, website, address_line1, city, state, postal_code, country, \
           owner_id, tags, created_at, updated_at) \
         SELECT $1, g.name, g.slug || '.example', g.industry, g.employees, \
           round((g.employees * (40000 + random() * 160000))::numeric, -3), \
           '+1 555 ' || lpad((g.i % 10000)::text, 4, '0'), 'https://www.' || g.slug || '.example', \
           (100 + g.i % 9000) || ' Main Street', ({cities})[g.place], ({states})[g.place], \
           lpad(((g.i * 37) % 99999)::text, 5, '0'), 'USA', g.owner, g.tags, g.created, g.created \
         FROM (SELECT i, name, lower(regexp_replace(name, '[^A-Za-z0-9]', '', 'g')) AS slug, \
                 industry, employees, place, owner, tags, created \
               FROM (SELECT i, {name} AS name, {industry} AS industry, \
                       (ARRAY[8, 25, 60, 150, 400, 1200, 5000])[1 + floor(random() * 7)::int] AS employees, \
                       1 + floor(random() * {places})::int AS place, {owner} AS owner, \
                       CASE WHEN random() < 0.15 THEN ARRAY['key-account'] \
                            WHEN random() < 0.1 THEN ARRAY['partner'] ELSE '{{}}'::text[] END AS tags, \
                       {CREATED} AS created \
                     FROM generate_series($5, $6) AS i) AS raw) AS g",
        cities = words(&cities),
        states = words(&states),
        name = company_name("(i - 1)"),
        industry = pick(INDUSTRIES),
        places = CITIES.len(),
        owner = ANY_OWNER,
    )
}

fn contacts_sql() -> String {
    let cities: Vec<&str> = CITIES.iter().map(|c| c.0).collect();
    format!(
        "WITH co AS (SELECT id, domain, row_number() OVER (ORDER BY id) AS n FROM companies \
                     WHERE workspace_id = $1 AND deleted_at IS NULL), \
              total AS (SELECT greatest(count(*), 1) AS n FROM co) \
         INSERT INTO contacts (workspace_id, salutation, first_name, last_name, email, phone, \
           mobile, company_id, job_title, department, city, country, contact_type, status, \
           linkedin, owner_id, assigned_to_id, tags, created_at, updated_at) \
         SELECT $1, CASE WHEN random() < 0.05 THEN 'Dr.' END, g.first, g.last, \
           lower(g.first || '.' || g.last || g.i || '@' || coalesce(co.domain, 'mail.example')), \
           '+1 555 01' || lpad((g.i % 100)::text, 2, '0'), \
           CASE WHEN random() < 0.5 THEN '+1 555 02' || lpad((g.i % 100)::text, 2, '0') END, \
           co.id, {title}, {department}, {city}, 'USA', \
           (ARRAY['prospect', 'prospect', 'customer', 'customer', 'vendor', 'partner'])[1 + floor(random() * 6)::int], \
           CASE WHEN random() < 0.9 THEN 'active' ELSE 'inactive' END, \
           'https://www.linkedin.com/in/' || lower(g.first || '-' || g.last || '-' || g.i), \
           {owner}, {assignee}, \
           CASE WHEN random() < 0.2 THEN ARRAY['newsletter'] ELSE '{{}}'::text[] END, g.created, g.created \
         FROM (SELECT i, {first} AS first, {last} AS last, \
                 1 + floor(random() * (SELECT n FROM total))::bigint AS k, {CREATED} AS created \
               FROM generate_series($5, $6) AS i) AS g \
         LEFT JOIN co ON co.n = g.k",
        title = pick(JOB_TITLES),
        department = pick(DEPARTMENTS),
        city = pick(&cities),
        owner = ANY_OWNER,
        assignee = SOME_ASSIGNEE,
        first = pick(FIRST_NAMES),
        last = pick(LAST_NAMES),
    )
}

fn leads_sql() -> String {
    let cities: Vec<&str> = CITIES.iter().map(|c| c.0).collect();
    let states: Vec<&str> = CITIES.iter().map(|c| c.1).collect();
    format!(
        "INSERT INTO leads (workspace_id, first_name, last_name, email, phone, company_name, \
           job_title, industry, company_size, country, state, city, lead_source, status, priority, \
           owner_id, assigned_to_id, estimated_value, probability, last_contacted_at, \
           next_follow_up_at, notes, custom_fields, tags, created_at, updated_at) \
         SELECT $1, g.first, g.last, \
           lower(g.first || '.' || g.last || g.i || '@' || regexp_replace(g.company, '[^A-Za-z0-9]', '', 'g') || '.example'), \
           '+1 555 03' || lpad((g.i % 100)::text, 2, '0'), g.company, {title}, {industry}, \
           (ARRAY[5, 20, 50, 200, 1000, 5000])[1 + floor(random() * 6)::int], 'USA', \
           ({states})[g.place], ({cities})[g.place], {source}, g.status, \
           (ARRAY['low', 'medium', 'medium', 'high', 'urgent'])[1 + floor(random() * 5)::int], \
           g.owner, {assignee}, \
           CASE WHEN random() < 0.7 THEN round((1000 + random() * 99000)::numeric, -2) END, \
           CASE g.status WHEN 'new' THEN 10 WHEN 'contacted' THEN 25 WHEN 'qualified' THEN 60 ELSE 0 END, \
           NULL, \
           CASE WHEN g.status IN ('contacted', 'qualified') \
                THEN now() + (random() * 24 - 3) * interval '1 day' END, \
           CASE WHEN random() < 0.1 THEN 'Met at the spring trade show.' END, \
           CASE WHEN random() < 0.3 THEN jsonb_build_object('campaign', {campaign}) ELSE '{{}}'::jsonb END, \
           CASE WHEN random() < 0.2 THEN ARRAY['inbound'] ELSE '{{}}'::text[] END, \
           g.created, g.created \
         FROM (SELECT i, first, last, {company} AS company, place, status, owner, created \
               FROM (SELECT i, floor(random() * 2000)::int AS c, {first} AS first, \
                       {last} AS last, 1 + floor(random() * {places})::int AS place, \
                       {status} AS status, {owner} AS owner, {CREATED} AS created \
                     FROM generate_series($5, $6) AS i) AS raw) AS g",
        title = pick(JOB_TITLES),
        industry = pick(INDUSTRIES),
        states = words(&states),
        cities = words(&cities),
        source = pick(&[
            "website",
            "website",
            "referral",
            "social_media",
            "email_campaign",
            "cold_call",
            "trade_show",
            "advertisement",
            "event",
            "other",
        ]),
        assignee = SOME_ASSIGNEE,
        campaign = pick(&["spring-webinar", "q3-newsletter", "partner-referral"]),
        first = pick(FIRST_NAMES),
        last = pick(LAST_NAMES),
        company = company_name("c"),
        places = CITIES.len(),
        // new 30%, contacted 25%, qualified 20%, unqualified 10%, lost 15%; "converted" only
        // through the real conversion afterwards.
        status = pick(&[
            "new",
            "new",
            "new",
            "new",
            "new",
            "new",
            "contacted",
            "contacted",
            "contacted",
            "contacted",
            "contacted",
            "qualified",
            "qualified",
            "qualified",
            "qualified",
            "unqualified",
            "unqualified",
            "lost",
            "lost",
            "lost",
        ]),
        owner = ANY_OWNER,
    )
}

/// `CASE stage WHEN ... THEN <its default probability> END`, from the one rule in `Stage`.
fn stage_probability(column: &str) -> String {
    let arms: Vec<String> = Stage::ALL
        .iter()
        .map(|s| format!("WHEN '{}' THEN {}", s.as_str(), s.default_probability()))
        .collect();
    format!("CASE {column} {} END", arms.join(" "))
}

fn opportunities_sql() -> String {
    format!(
        "WITH ct AS (SELECT contacts.id, contacts.company_id, companies.name AS company, \
                       row_number() OVER (ORDER BY contacts.id) AS n \
                     FROM contacts JOIN companies ON companies.id = contacts.company_id \
                     WHERE contacts.workspace_id = $1 AND contacts.deleted_at IS NULL), \
              total AS (SELECT greatest(count(*), 1) AS n FROM ct) \
         INSERT INTO opportunities (workspace_id, name, company_id, contact_id, stage, \
           probability, amount, currency, expected_close_date, actual_close_date, lost_reason, \
           owner_id, assigned_to_id, tags, created_at, updated_at) \
         SELECT $1, coalesce(ct.company || ' - ', '') || g.product, ct.company_id, ct.id, g.stage, \
           {probability}, round((2000 + random() * 198000)::numeric, -2), \
           (ARRAY['USD', 'USD', 'USD', 'USD', 'USD', 'USD', 'EUR', 'EUR', 'GBP'])[1 + floor(random() * 9)::int], \
           CASE WHEN g.stage IN ('closed_won', 'closed_lost') \
                THEN current_date - floor(random() * 120)::int \
                ELSE current_date + floor(random() * 180 - 20)::int END, \
           CASE WHEN g.stage IN ('closed_won', 'closed_lost') \
                THEN current_date - floor(random() * 120)::int END, \
           CASE WHEN g.stage = 'closed_lost' THEN {reason} END, \
           {owner}, {assignee}, '{{}}'::text[], g.created, g.created \
         FROM (SELECT i, {product} AS product, {stage} AS stage, \
                 1 + floor(random() * (SELECT n FROM total))::bigint AS k, {CREATED} AS created \
               FROM generate_series($5, $6) AS i) AS g \
         LEFT JOIN ct ON ct.n = g.k",
        probability = stage_probability("g.stage"),
        reason = pick(&["Price", "Chose a competitor", "No budget", "Timing"]),
        owner = ANY_OWNER,
        assignee = SOME_ASSIGNEE,
        product = pick(PRODUCTS),
        stage = pick(&[
            "prospecting",
            "prospecting",
            "qualification",
            "qualification",
            "proposal",
            "proposal",
            "negotiation",
            "closed_won",
            "closed_won",
            "closed_lost",
        ]),
    )
}

fn tasks_sql() -> String {
    format!(
        "WITH ld AS (SELECT id, coalesce(first_name || ' ' || last_name, company_name, email) AS who, \
                       row_number() OVER (ORDER BY id) AS n \
                     FROM leads WHERE workspace_id = $1 AND deleted_at IS NULL), \
              leads_total AS (SELECT greatest(count(*), 1) AS n FROM ld), \
              op AS (SELECT id, name, row_number() OVER (ORDER BY id) AS n \
                     FROM opportunities WHERE workspace_id = $1 AND deleted_at IS NULL), \
              opportunities_total AS (SELECT greatest(count(*), 1) AS n FROM op) \
         INSERT INTO tasks (workspace_id, title, task_type, status, priority, due_at, \
           reminder_at, completed_at, assigned_to_id, owner_id, lead_id, opportunity_id, tags, \
           created_at, updated_at) \
         SELECT $1, \
           CASE g.kind WHEN 'call' THEN 'Call ' WHEN 'email' THEN 'Email ' \
             WHEN 'meeting' THEN 'Meet ' WHEN 'follow_up' THEN 'Follow up with ' \
             WHEN 'proposal' THEN 'Send a proposal to ' WHEN 'demo' THEN 'Demo for ' \
             ELSE 'Review ' END || coalesce(ld.who, op.name, 'the pipeline'), \
           g.kind, g.status, \
           (ARRAY['low', 'medium', 'medium', 'high', 'urgent'])[1 + floor(random() * 5)::int], \
           g.due, CASE WHEN random() < 0.5 THEN g.due - interval '1 hour' END, \
           CASE WHEN g.status = 'completed' THEN least(g.due, now()) END, \
           {assignee}, {owner}, ld.id, op.id, '{{}}'::text[], g.created, g.created \
         FROM (SELECT i, {kind} AS kind, {status} AS status, \
                 now() + (random() * 50 - 20) * interval '1 day' AS due, \
                 i % 3 <> 0 AS on_lead, \
                 1 + floor(random() * (SELECT n FROM leads_total))::bigint AS lead_k, \
                 1 + floor(random() * (SELECT n FROM opportunities_total))::bigint AS op_k, \
                 now() - random() * interval '30 days' AS created \
               FROM generate_series($5, $6) AS i) AS g \
         LEFT JOIN ld ON g.on_lead AND ld.n = g.lead_k \
         LEFT JOIN op ON NOT g.on_lead AND op.n = g.op_k",
        assignee = "CASE WHEN random() < 0.7 THEN $4 ELSE $3 END",
        owner = ANY_OWNER,
        kind = pick(&[
            "call",
            "call",
            "email",
            "email",
            "meeting",
            "follow_up",
            "proposal",
            "demo",
            "other",
        ]),
        status = pick(&[
            "pending",
            "pending",
            "pending",
            "in_progress",
            "completed",
            "completed",
            "cancelled",
        ]),
    )
}

fn activities_sql() -> String {
    format!(
        "WITH ld AS (SELECT id, owner_id, created_at, row_number() OVER (ORDER BY id) AS n \
                     FROM leads WHERE workspace_id = $1 AND deleted_at IS NULL), \
              total AS (SELECT greatest(count(*), 1) AS n FROM ld) \
         INSERT INTO activities (workspace_id, kind, subject, body, occurred_at, actor_id, \
           lead_id, created_at, updated_at) \
         SELECT $1, g.kind, \
           CASE g.kind WHEN 'call' THEN 'Discovery call' WHEN 'email' THEN 'Sent pricing' \
             WHEN 'meeting' THEN 'On-site meeting' WHEN 'comment' THEN 'Internal comment' \
             ELSE 'Note' END, \
           {body}, t.at, ld.owner_id, ld.id, t.at, t.at \
         FROM (SELECT i, {kind} AS kind, random() AS r, \
                 1 + floor(random() * (SELECT n FROM total))::bigint AS k \
               FROM generate_series($5, $6) AS i) AS g \
         JOIN ld ON ld.n = g.k \
         CROSS JOIN LATERAL (SELECT ld.created_at + g.r * (now() - ld.created_at) AS at) AS t(at)",
        body = pick(&[
            "Interested in the enterprise plan; wants a demo next week.",
            "Asked for a case study from their industry.",
            "Budget approved for next quarter.",
            "Left a voicemail.",
            "Evaluating two other vendors.",
            "Needs SSO and an EU data region.",
        ]),
        kind = pick(&["note", "call", "call", "email", "email", "meeting", "comment"]),
    )
}

/// A lead's last contact is its latest call, email or meeting (the rule `logActivity` keeps).
const LAST_CONTACTED: &str = "UPDATE leads SET last_contacted_at = a.at \
     FROM (SELECT lead_id, max(occurred_at) AS at FROM activities \
           WHERE workspace_id = $1 AND kind IN ('call', 'email', 'meeting') GROUP BY lead_id) AS a \
     WHERE leads.id = a.lead_id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_probabilities_come_from_the_stage_rule() {
        let sql = stage_probability("s");
        assert!(sql.contains("WHEN 'negotiation' THEN 75"), "{sql}");
        assert!(sql.starts_with("CASE s WHEN"));
    }

    #[test]
    fn word_lists_are_quoted() {
        assert_eq!(words(&["a", "b"]), "ARRAY['a', 'b']");
        assert_eq!(pick(&["x"]), "(ARRAY['x'])[1 + floor(random() * 1)::int]");
    }
}
