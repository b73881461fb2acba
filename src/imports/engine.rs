//! Running an import: the file is read on a blocking thread (`parse`) while this side checks
//! each batch against the database and writes it through the kind's own create and update
//! rules (`crm::edit::Editable`), with the change-stream events of every record.
//!
//! - `skip_errors` (default): each batch commits with the import's totals and the line it
//!   reached, so a retried job resumes after it; bad rows are kept for errors.csv.
//! - `skip_errors=false` and `dry_run`: the whole file is one transaction, rolled back on a dry
//!   run or when any row failed, so the database checks (unique emails, references) still run
//!   for every row and nothing stays written.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;

use diesel::sql_types::{BigInt, Jsonb, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value as Json};

use super::columns::{Resource, Type};
use super::decode::{detect, sniff_delimiter, strip_bom, Transcode};
use super::mapping::Plan;
use super::parse::{self, ChunkReader, Parsed, ParsedRow, Problem, ReadSpec};
use super::records::Importable;
use super::seen::{expected_rows, SeenKeys};
use super::store::{self, Counts, FailedRow, ImportRow, MatchOn, Options, UpdatedRecord};
use crate::auth::viewer::acting_for;
use crate::auth::{UserId, Viewer};
use crate::crm::check_owner_change;
use crate::crm::companies::{normalize_domain, Company};
use crate::crm::contacts::Contact;
use crate::crm::edit::new_owner;
use crate::crm::events;
use crate::crm::leads::Lead;
use crate::crm::opportunities::Opportunity;
use crate::crm::query::{self, Deleted, Listable, Table};
use crate::crm::sql::{Bind, Sql};
use crate::crm::tasks::Task;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::jobs::JobContext;

/// Chunks of the upload read ahead of the parser.
const CHUNKS_AHEAD: usize = 4;

/// Runs (or resumes) an import to its end and returns it as stored then. `job` reports
/// progress and carries cancellation when the import runs in the background.
pub async fn run(db: &DbPool, import: i64, job: Option<&JobContext>) -> AppResult<ImportRow> {
    let mut conn = db.get().await?;
    let row = store::load(&mut conn, import).await?;
    if !matches!(row.status.as_str(), "queued" | "running") {
        // Already over (a job delivered twice): nothing to do.
        return Ok(row);
    }
    let viewer = match acting_for(&mut conn, UserId(row.created_by)).await {
        Ok(viewer) => viewer,
        Err(err) => {
            store::finish(&mut conn, import, "failed", Some(&err.to_string())).await?;
            return store::load(&mut conn, import).await;
        }
    };
    drop(conn);
    let run = Run {
        db,
        row,
        viewer,
        job,
    };
    match run.row.resource()? {
        Resource::Leads => run.kind::<Lead>().await?,
        Resource::Contacts => run.kind::<Contact>().await?,
        Resource::Companies => run.kind::<Company>().await?,
        Resource::Opportunities => run.kind::<Opportunity>().await?,
        Resource::Tasks => run.kind::<Task>().await?,
    }
    store::load(&mut *db.get().await?, import).await
}

struct Run<'a> {
    db: &'a DbPool,
    row: ImportRow,
    viewer: Viewer,
    job: Option<&'a JobContext>,
}

/// Why a whole-file transaction ended without committing.
enum Whole {
    /// Dry run, or a row failed with `skip_errors=false`.
    RolledBack,
    Error(AppError),
}

impl From<diesel::result::Error> for Whole {
    fn from(err: diesel::result::Error) -> Self {
        Whole::Error(err.into())
    }
}

impl From<AppError> for Whole {
    fn from(err: AppError) -> Self {
        Whole::Error(err)
    }
}

impl Run<'_> {
    async fn kind<R: Importable>(&self) -> AppResult<()> {
        let id = self.row.id;
        let options = self.row.options()?;
        let mut conn = self.db.get().await?;
        let fresh = self.row.committed_line == 0;
        store::begin(&mut conn, id, fresh).await?;
        let counts = if fresh {
            Counts::default()
        } else {
            Counts::of(&self.row)
        };
        let Some(first) = store::chunk(&mut conn, id, 0).await? else {
            let message = "line 1: the file is empty; it needs a header line and rows";
            return store::finish(&mut conn, id, "failed", Some(message)).await;
        };
        let encoding = match detect(&first) {
            Ok(encoding) => encoding,
            Err(message) => return store::finish(&mut conn, id, "failed", Some(&message)).await,
        };
        let delimiter = if encoding.transcodes() {
            sniff_delimiter(&encoding.head_text(&first))
        } else {
            sniff_delimiter(strip_bom(&first))
        };
        let expected = expected_rows(self.row.file_bytes as u64, &first);
        let (chunks, chunk_rx) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
        let feeder = tokio::spawn(feed_chunks(self.db.clone(), id, chunks));
        let (batches, mut parsed) = tokio::sync::mpsc::channel(2);
        let spec = ReadSpec {
            resource: R::RESOURCE,
            delimiter,
            mapping: options.mapping.clone(),
            users: active_users(&mut conn, self.viewer.workspace_id.0).await?,
            committed_line: self.row.committed_line as u64,
        };
        let reader = tokio::task::spawn_blocking(move || {
            let chunks = ChunkReader::new(first, chunk_rx);
            if encoding.transcodes() {
                parse::read(Transcode::new(chunks, encoding), spec, batches)
            } else {
                parse::read(chunks, spec, batches)
            }
        });
        let plan = match parsed.recv().await {
            Some(Parsed::Plan(Ok(plan))) => plan,
            Some(Parsed::Plan(Err(err))) => {
                return store::finish(&mut conn, id, "failed", Some(&err.to_string())).await
            }
            Some(Parsed::Failed(message)) => {
                return store::finish(&mut conn, id, "failed", Some(&message)).await
            }
            _ => {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "the import reader stopped before the header"
                )))
            }
        };
        let columns: Map<String, Json> = plan
            .headers
            .iter()
            .zip(&plan.targets)
            .filter_map(|(h, t)| t.as_ref().map(|t| (h.clone(), Json::String(t.name()))))
            .collect();
        store::set_plan(
            &mut conn,
            id,
            &plan.headers,
            &Json::Object(columns),
            &plan.ignored(),
        )
        .await?;
        let mut writer = Writer::<R>::new(
            id,
            self.viewer.clone(),
            options.clone(),
            plan,
            counts,
            expected,
        );
        let result = if options.skip_errors && !options.dry_run {
            self.batch_by_batch(&mut conn, &mut writer, &mut parsed)
                .await
        } else {
            self.all_or_nothing(&mut conn, &mut writer, &mut parsed)
                .await
        };
        drop(parsed);
        feeder.abort();
        let _ = reader.await;
        match result {
            Ok(None) => {
                store::finish(&mut conn, id, "completed", None).await?;
                let written = writer.counts.imported + writer.counts.updated;
                if options.dry_run {
                    return Ok(());
                }
                store::refresh_statistics(&mut conn, R::RESOURCE.table().name, written).await
            }
            Ok(Some(failure)) => store::finish(&mut conn, id, "failed", Some(&failure)).await,
            Err(err) => {
                err.log_if_internal();
                let message = match &err {
                    AppError::Internal(_) => "the import stopped on an internal error".to_string(),
                    other => other.to_string(),
                };
                store::finish(&mut conn, id, "failed", Some(&message)).await?;
                Ok(())
            }
        }
    }

    /// Commits batch by batch. `Ok(Some(why))` ends the import as failed.
    async fn batch_by_batch<R: Importable>(
        &self,
        conn: &mut AsyncPgConnection,
        writer: &mut Writer<R>,
        parsed: &mut tokio::sync::mpsc::Receiver<Parsed>,
    ) -> AppResult<Option<String>> {
        while let Some(message) = parsed.recv().await {
            let (rows, bytes) = match message {
                Parsed::Batch { rows, bytes } => (rows, bytes),
                Parsed::Failed(why) => return Ok(Some(why)),
                Parsed::Plan(_) => continue,
            };
            let import = writer.import;
            conn.transaction::<_, AppError, _>(async |conn| {
                let failed = writer.batch(conn, rows).await?;
                store::save_failed(conn, import, &failed).await?;
                store::save_counts(conn, import, writer.counts, Some(writer.last_line)).await
            })
            .await?;
            if let Some(why) = self.progress(writer, bytes).await? {
                return Ok(Some(why));
            }
        }
        Ok(None)
    }

    /// One transaction for the whole file, rolled back on a dry run or any failed row.
    async fn all_or_nothing<R: Importable>(
        &self,
        conn: &mut AsyncPgConnection,
        writer: &mut Writer<R>,
        parsed: &mut tokio::sync::mpsc::Receiver<Parsed>,
    ) -> AppResult<Option<String>> {
        // Failed rows and totals must outlive a rollback: they go through a second connection.
        let mut side = self.db.get().await?;
        let dry_run = writer.options.dry_run;
        let outcome = conn
            .transaction::<_, Whole, _>(async |conn| {
                while let Some(message) = parsed.recv().await {
                    let (rows, bytes) = match message {
                        Parsed::Batch { rows, bytes } => (rows, bytes),
                        Parsed::Failed(why) => return Ok(Some(why)),
                        Parsed::Plan(_) => continue,
                    };
                    let failed = writer.batch(conn, rows).await?;
                    store::save_failed(&mut side, writer.import, &failed).await?;
                    store::save_counts(&mut side, writer.import, writer.counts, None).await?;
                    if let Some(why) = self.progress(writer, bytes).await? {
                        return Ok(Some(why));
                    }
                }
                if dry_run || writer.counts.errors > 0 {
                    Err(Whole::RolledBack)
                } else {
                    Ok(None)
                }
            })
            .await;
        match outcome {
            Ok(failure) => Ok(failure),
            Err(Whole::Error(err)) => Err(err),
            Err(Whole::RolledBack) if dry_run => Ok(None),
            Err(Whole::RolledBack) => {
                let errors = writer.counts.errors;
                let counts = Counts {
                    imported: 0,
                    updated: 0,
                    skipped: writer.counts.total_rows,
                    ..writer.counts
                };
                store::save_counts(&mut side, writer.import, counts, None).await?;
                Ok(Some(format!(
                    "{errors} row(s) had errors, so nothing was written (skip_errors is false)"
                )))
            }
        }
    }

    /// Reports progress to the job; `Some(why)` when the job was cancelled.
    async fn progress<R: Importable>(
        &self,
        writer: &Writer<R>,
        bytes: u64,
    ) -> AppResult<Option<String>> {
        let Some(job) = self.job else {
            return Ok(None);
        };
        if job.cancellation().is_cancelled() {
            return Ok(Some(format!("cancelled after line {}", writer.last_line)));
        }
        let total = self.row.file_bytes.max(1) as u64;
        let percent = (bytes.saturating_mul(100) / total).min(99) as i16;
        let c = writer.counts;
        let message = format!(
            "line {}: {} imported, {} updated, {} skipped, {} errors",
            writer.last_line, c.imported, c.updated, c.skipped, c.errors
        );
        job.progress(percent, &message).await?;
        Ok(None)
    }
}

/// Sends the upload's chunks after the first, in order, to the reader.
async fn feed_chunks(
    db: DbPool,
    import: i64,
    out: tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>,
) {
    let unreadable = "the uploaded file could not be read back".to_string();
    let mut conn = match db.get().await {
        Ok(conn) => conn,
        Err(_) => {
            let _ = out.send(Err(unreadable)).await;
            return;
        }
    };
    for seq in 1.. {
        let next = match store::chunk(&mut conn, import, seq).await {
            Ok(Some(data)) => Ok(data),
            Ok(None) => return,
            Err(_) => Err(unreadable.clone()),
        };
        let stop = next.is_err();
        if out.send(next).await.is_err() || stop {
            return;
        }
    }
}

/// Active users of a workspace by (lower-case) email.
pub async fn active_users(
    conn: &mut AsyncPgConnection,
    workspace_id: i64,
) -> AppResult<HashMap<String, i64>> {
    #[derive(QueryableByName)]
    struct User {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        email: String,
    }
    let users: Vec<User> = diesel::sql_query(
        "SELECT id, lower(email) AS email FROM users WHERE workspace_id = $1 AND is_active",
    )
    .bind::<BigInt, _>(workspace_id)
    .load(conn)
    .await?;
    Ok(users.into_iter().map(|u| (u.email, u.id)).collect())
}

/// A row on its way to being written.
struct Ready<T> {
    row: ParsedRow,
    id: Option<i64>,
    changes: T,
}

/// Checks and writes batches of one kind, keeping the import's totals.
struct Writer<R: Importable> {
    import: i64,
    viewer: Viewer,
    options: Options,
    plan: Plan,
    counts: Counts,
    seen: SeenKeys,
    last_line: u64,
    kind: PhantomData<R>,
}

impl<R: Importable> Writer<R> {
    fn new(
        import: i64,
        viewer: Viewer,
        options: Options,
        plan: Plan,
        counts: Counts,
        expected_rows: usize,
    ) -> Self {
        Writer {
            import,
            viewer,
            options,
            plan,
            counts,
            seen: SeenKeys::with_expected_rows(expected_rows),
            last_line: 0,
            kind: PhantomData,
        }
    }

    /// The column (by name) that carries the match key.
    fn key_column(&self) -> &'static str {
        self.options.match_on.name()
    }

    /// The row's match key, normalised as stored.
    fn key_of(&self, row: &ParsedRow) -> Option<String> {
        let cells = &row.cells;
        let value = cells.values.iter().find(|(n, _)| *n == self.key_column());
        match (self.options.match_on, value.map(|(_, v)| v)) {
            (MatchOn::Email, Some(super::values::Value::Email(e))) => Some(e.clone()),
            (MatchOn::Name, Some(super::values::Value::Text(t))) => Some(t.trim().to_lowercase()),
            (MatchOn::Domain, Some(super::values::Value::Text(t))) => {
                normalize_domain(Some(Some(t.clone()))).flatten()
            }
            (MatchOn::Id, _) => cells.id("id").map(|id| id.to_string()),
            _ => None,
        }
    }

    /// The header of the file's column for a field (as an error names it), else the field.
    fn header_for(&self, field: &str) -> String {
        let snake = camel_to_snake(field);
        let column = R::RESOURCE
            .columns()
            .iter()
            .find(|c| c.stored == snake || c.name == snake)
            .map_or(snake.clone(), |c| c.name.to_string());
        self.plan
            .headers
            .iter()
            .zip(&self.plan.targets)
            .find(|(_, t)| t.as_ref().is_some_and(|t| t.name() == column))
            .map_or(column, |(h, _)| h.clone())
    }

    /// A rule a row broke, as its problem; internal errors stop the import instead.
    fn problem(&self, row: &ParsedRow, err: AppError) -> AppResult<Problem> {
        if let AppError::Internal(_) = err {
            return Err(err);
        }
        let column = err.field().map(|f| self.header_for(f));
        let value = column.as_ref().and_then(|header| self.cell(row, header));
        Ok(Problem {
            column,
            value,
            error: err.to_string(),
        })
    }

    /// The row's cell under `header`, as written.
    fn cell(&self, row: &ParsedRow, header: &str) -> Option<String> {
        self.plan
            .headers
            .iter()
            .position(|h| h == header)
            .and_then(|i| row.raw.get(i).cloned())
    }

    /// A problem with the row's match key (its column, the cell as written).
    fn key_problem(&self, row: &ParsedRow, error: String) -> Problem {
        let column = self.header_for(self.key_column());
        Problem {
            value: self.cell(row, &column),
            column: Some(column),
            error,
        }
    }

    fn fail(&mut self, failed: &mut Vec<FailedRow>, row: ParsedRow, problems: Vec<Problem>) {
        self.counts.errors += 1;
        self.counts.skipped += 1;
        failed.push(FailedRow {
            line: row.line,
            cells: row.raw,
            problems,
        });
    }

    /// Checks and writes one batch; returns the rows that were not written.
    async fn batch(
        &mut self,
        conn: &mut AsyncPgConnection,
        rows: Vec<ParsedRow>,
    ) -> AppResult<Vec<FailedRow>> {
        let mut failed = Vec::new();
        let mut keyed = Vec::with_capacity(rows.len());
        for row in rows {
            self.last_line = self.last_line.max(row.line);
            let key = self.key_of(&row);
            if row.already {
                if let Some(key) = key {
                    self.seen.remember(&key, row.line);
                }
                continue;
            }
            self.counts.total_rows += 1;
            let mut problems = row.problems.clone();
            if let Some(key) = &key {
                if let Some(first) = self.seen.first_line(key, row.line) {
                    problems.push(self.key_problem(
                        &row,
                        format!(
                            "the same {} as line {first}: a file may name a record once",
                            self.key_column()
                        ),
                    ));
                }
            }
            if problems.is_empty() {
                keyed.push((row, key));
            } else {
                self.fail(&mut failed, row, problems);
            }
        }
        let keys: Vec<String> = keyed.iter().filter_map(|(_, k)| k.clone()).collect();
        let existing = self.existing(conn, keys).await?;
        let mut creates: Vec<Ready<R::Changes>> = Vec::new();
        let mut updates: Vec<(ParsedRow, i64, R::Input)> = Vec::new();
        for (row, key) in keyed {
            let found = key.as_ref().and_then(|k| existing.get(k));
            match found {
                Some(matches) if matches.len() > 1 => {
                    let problem = self.key_problem(
                        &row,
                        format!(
                            "{} {} have this {}; match on id instead",
                            matches.len(),
                            R::RESOURCE.name(),
                            self.key_column()
                        ),
                    );
                    self.fail(&mut failed, row, vec![problem]);
                }
                Some(matches) if !self.options.update_existing => {
                    // Not an error: the record is there and the caller asked not to touch it.
                    self.counts.skipped += 1;
                    let problem = self.key_problem(
                        &row,
                        format!(
                            "skipped: {} {} already has this {} (update_existing is false)",
                            R::WHAT,
                            matches[0].0,
                            self.key_column()
                        ),
                    );
                    failed.push(FailedRow {
                        line: row.line,
                        problems: vec![problem],
                        cells: row.raw,
                    });
                }
                // A record cannot be created with a given ID: an ID that names no record the
                // caller can see is a mistake (a stale file, another workspace's export), not
                // a new record.
                None if key.is_some() && self.options.match_on == MatchOn::Id => {
                    let problem =
                        self.key_problem(&row, format!("no {} you can see has this id", R::WHAT));
                    self.fail(&mut failed, row, vec![problem]);
                }
                Some(matches) => {
                    let (id, current_custom) = &matches[0];
                    let custom = (!row.cells.custom.is_empty()).then(|| {
                        let mut merged = current_custom.as_object().cloned().unwrap_or_default();
                        merged.extend(row.cells.custom.clone());
                        Json::Object(merged)
                    });
                    let input = R::input(&row.cells, custom);
                    updates.push((row, *id, input));
                }
                None => {
                    let custom = (!row.cells.custom.is_empty())
                        .then(|| Json::Object(row.cells.custom.clone()));
                    let input = R::input(&row.cells, custom);
                    let checked = R::for_create(&input).and_then(|mut changes| {
                        new_owner::<R>(&self.viewer, &mut changes).map_err(owner_refused)?;
                        Ok(changes)
                    });
                    match checked {
                        Ok(changes) => creates.push(Ready {
                            row,
                            id: None,
                            changes,
                        }),
                        Err(err) => {
                            let problem = self.problem(&row, err)?;
                            self.fail(&mut failed, row, vec![problem]);
                        }
                    }
                }
            }
        }
        let updates = self.check_updates(conn, updates, &mut failed).await?;
        let creates = self.check_references(conn, creates, &mut failed).await?;
        let updates = self.check_references(conn, updates, &mut failed).await?;
        self.insert(conn, creates, &mut failed).await?;
        self.update(conn, updates, &mut failed).await?;
        Ok(failed)
    }

    /// Records with these keys the caller may see: key → [(id, custom_fields)].
    async fn existing(
        &self,
        conn: &mut AsyncPgConnection,
        keys: Vec<String>,
    ) -> AppResult<HashMap<String, Vec<(i64, Json)>>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = Text)]
            key: String,
            #[diesel(sql_type = Jsonb)]
            custom_fields: Json,
        }
        let t = R::TABLE.name;
        let key_sql = match self.options.match_on {
            MatchOn::Email => format!("{t}.email"),
            MatchOn::Name => format!("lower({t}.name)"),
            MatchOn::Domain => format!("{t}.domain"),
            MatchOn::Id => format!("{t}.id"),
        };
        let mut sql = Sql::new(&format!(
            "SELECT {t}.id, ({key_sql})::text AS key, {t}.custom_fields FROM {t} WHERE "
        ));
        // Planned per call: the table grows while the import runs, and a generic plan made
        // on the near-empty table (a scan comparing every row with every key) would stay.
        sql.uncacheable();
        sql.append(query::scope(&self.viewer, &R::TABLE, Deleted::Hide))
            .push(&format!(" AND {key_sql} = ANY("));
        if self.options.match_on == MatchOn::Id {
            sql.bind(Bind::Ints(
                keys.iter().filter_map(|k| k.parse().ok()).collect(),
            ));
        } else {
            sql.bind(Bind::Texts(keys));
        }
        sql.push(&format!(") ORDER BY {t}.id"));
        let found: Vec<Found> = sql.into_query().load(conn).await?;
        let mut by_key: HashMap<String, Vec<(i64, Json)>> = HashMap::new();
        for f in found {
            by_key
                .entry(f.key)
                .or_default()
                .push((f.id, f.custom_fields));
        }
        Ok(by_key)
    }

    /// Validates updates as `update` does: the patch, who may set the owner, and the kind's
    /// per-row rules against the record as it is.
    async fn check_updates(
        &mut self,
        conn: &mut AsyncPgConnection,
        updates: Vec<(ParsedRow, i64, R::Input)>,
        failed: &mut Vec<FailedRow>,
    ) -> AppResult<Vec<Ready<R::Changes>>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = updates.iter().map(|(_, id, _)| *id).collect();
        let current: HashMap<i64, R> = query::find_many::<R>(conn, &self.viewer, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id(), r))
            .collect();
        let mut ready = Vec::with_capacity(updates.len());
        for (row, id, input) in updates {
            let checked = R::validate(&input).and_then(|changes| {
                check_owner_change(&self.viewer, R::new_owner(&changes)).map_err(owner_refused)?;
                let record = current.get(&id).ok_or(AppError::NotFound(R::WHAT))?;
                R::for_row(&changes, record)
            });
            match checked {
                Ok(changes) => ready.push(Ready {
                    row,
                    id: Some(id),
                    changes,
                }),
                Err(err) => {
                    let problem = self.problem(&row, err)?;
                    self.fail(failed, row, vec![problem]);
                }
            }
        }
        Ok(ready)
    }

    /// Records the rows point at (`company_id`, ...) must be ones the caller may see.
    async fn check_references(
        &mut self,
        conn: &mut AsyncPgConnection,
        rows: Vec<Ready<R::Changes>>,
        failed: &mut Vec<FailedRow>,
    ) -> AppResult<Vec<Ready<R::Changes>>> {
        let mut invisible: HashMap<&'static str, HashSet<i64>> = HashMap::new();
        for column in R::RESOURCE
            .columns()
            .iter()
            .filter(|c| c.ty == Type::Reference)
        {
            let ids: Vec<i64> = rows
                .iter()
                .filter_map(|r| r.row.cells.id(column.name))
                .collect();
            if ids.is_empty() {
                continue;
            }
            let (table, _) = referenced(column.name);
            let visible = visible_ids(conn, &self.viewer, &table, &ids).await?;
            invisible.insert(
                column.name,
                ids.into_iter().filter(|id| !visible.contains(id)).collect(),
            );
        }
        if invisible.values().all(HashSet::is_empty) {
            return Ok(rows);
        }
        let mut kept = Vec::with_capacity(rows.len());
        for ready in rows {
            let problems: Vec<Problem> = invisible
                .iter()
                .filter_map(|(column, ids)| {
                    let id = ready.row.cells.id(column)?;
                    ids.contains(&id).then(|| Problem {
                        column: Some(self.header_for(column)),
                        value: Some(id.to_string()),
                        error: format!(
                            "{column} {id} is not a {} you can see",
                            referenced(column).1
                        ),
                    })
                })
                .collect();
            if problems.is_empty() {
                kept.push(ready);
            } else {
                self.fail(failed, ready.row, problems);
            }
        }
        Ok(kept)
    }

    /// Inserts the new records in one statement; when the database refuses it, row by row
    /// (each in a savepoint) so that only the offending rows fail.
    async fn insert(
        &mut self,
        conn: &mut AsyncPgConnection,
        rows: Vec<Ready<R::Changes>>,
        failed: &mut Vec<FailedRow>,
    ) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let workspace = self.viewer.workspace_id;
        let all: Vec<R::Changes> = rows.iter().map(|r| r.changes.clone()).collect();
        let ids = match conn
            .transaction::<_, diesel::result::Error, _>(async |c| {
                R::insert(c, workspace, &all).await
            })
            .await
        {
            Ok(ids) => ids,
            Err(_) => {
                let mut ids = Vec::with_capacity(rows.len());
                for ready in rows {
                    let one = std::slice::from_ref(&ready.changes);
                    match conn
                        .transaction::<_, diesel::result::Error, _>(async |c| {
                            R::insert(c, workspace, one).await
                        })
                        .await
                    {
                        Ok(mut new) => ids.append(&mut new),
                        Err(err) => {
                            let problem = self.refused(&ready.row, err)?;
                            self.fail(failed, ready.row, vec![problem]);
                        }
                    }
                }
                ids
            }
        };
        events::changed(
            conn,
            &self.viewer,
            events::kind::<R>(),
            "created",
            &ids,
            &HashMap::new(),
        )
        .await?;
        store::record_created(conn, self.import, &ids).await?;
        self.counts.imported += ids.len() as i64;
        Ok(())
    }

    /// Applies the updates (each in a savepoint, so a refused one fails alone), with their
    /// events and what undo needs to put the fields back.
    async fn update(
        &mut self,
        conn: &mut AsyncPgConnection,
        rows: Vec<Ready<R::Changes>>,
        failed: &mut Vec<FailedRow>,
    ) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().filter_map(|r| r.id).collect();
        let before = events::snapshot(conn, R::TABLE.name, &ids).await?;
        let mut written = Vec::with_capacity(rows.len());
        for ready in rows {
            let Some(id) = ready.id else { continue };
            let changes = &ready.changes;
            match conn
                .transaction::<_, diesel::result::Error, _>(async |c| {
                    R::write(c, &[id], changes).await
                })
                .await
            {
                Ok(_) => written.push(id),
                Err(err) => {
                    let problem = self.refused(&ready.row, err)?;
                    self.fail(failed, ready.row, vec![problem]);
                }
            }
        }
        let changes = events::changed(
            conn,
            &self.viewer,
            events::kind::<R>(),
            "updated",
            &written,
            &before,
        )
        .await?;
        let side = |diff: &Map<String, Json>, side: &str| {
            Json::Object(
                diff.iter()
                    .map(|(field, change)| (field.clone(), change[side].clone()))
                    .collect(),
            )
        };
        let undo = changes
            .iter()
            .map(|c| {
                let fields = c.fields()?;
                Ok(UpdatedRecord {
                    record_id: c.record_id,
                    before: side(&fields, "old"),
                    after: side(&fields, "new"),
                })
            })
            .collect::<AppResult<Vec<UpdatedRecord>>>()?;
        store::record_updated(conn, self.import, &undo).await?;
        self.counts.updated += written.len() as i64;
        Ok(())
    }

    /// A write the database refused, as the row's problem: the kind's explanation when it
    /// has one, else the rule's name. Anything else (a lost connection) stops the import.
    fn refused(&self, row: &ParsedRow, err: diesel::result::Error) -> AppResult<Problem> {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        let rule = match &err {
            Error::DatabaseError(
                Kind::CheckViolation
                | Kind::UniqueViolation
                | Kind::ForeignKeyViolation
                | Kind::NotNullViolation,
                info,
            ) => Some(
                info.constraint_name()
                    .unwrap_or("a database rule")
                    .to_string(),
            ),
            _ => None,
        };
        match (R::explain(err, false), rule) {
            (AppError::Internal(_), Some(rule)) => Ok(Problem {
                column: None,
                value: None,
                error: format!("the row breaks the rule {rule}"),
            }),
            (err, _) => self.problem(row, err),
        }
    }
}

/// Who may own records is a permission, but in a file it is a cell: report it on `owner`.
fn owner_refused(err: AppError) -> AppError {
    match err {
        AppError::Forbidden(message) => AppError::bad_input("ownerId", message),
        other => other,
    }
}

/// `ownerId` → `owner_id` (error fields are the GraphQL input names).
fn camel_to_snake(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 4);
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The kind a reference column points at: its table and name.
pub(crate) fn referenced(column: &str) -> (Table, &'static str) {
    match column {
        "company_id" => (Company::TABLE, Company::WHAT),
        "contact_id" => (Contact::TABLE, Contact::WHAT),
        "lead_id" => (Lead::TABLE, Lead::WHAT),
        _ => (Opportunity::TABLE, Opportunity::WHAT),
    }
}

/// Which of `ids` are live records of `table` the caller may see.
async fn visible_ids(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    table: &Table,
    ids: &[i64],
) -> AppResult<HashSet<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let t = table.name;
    let mut sql = Sql::new(&format!("SELECT {t}.id FROM {t} WHERE "));
    sql.uncacheable();
    sql.append(query::scope(viewer, table, Deleted::Hide))
        .push(&format!(" AND {t}.id = ANY("))
        .bind(Bind::Ints(ids.to_vec()))
        .push(")");
    let found: Vec<Id> = sql.into_query().load(conn).await?;
    Ok(found.into_iter().map(|r| r.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields_become_columns() {
        assert_eq!(camel_to_snake("ownerId"), "owner_id");
        assert_eq!(camel_to_snake("addressLine1"), "address_line1");
        assert_eq!(camel_to_snake("email"), "email");
    }
}
