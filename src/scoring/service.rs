//! Lead scoring as the API and the jobs use it: which scorer a workspace has now, scoring
//! leads in batches, training, the registry, and the statistics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::features::LeadFacts;
use super::jobs::{Retrain, ScoreLeads};
use super::model::{self, ScoringModel};
use super::store::{self, ActiveStamp, ModelRow, StatsRow, Which};
use super::{rules, Score, Scorer};
use crate::auth::{Role, Viewer};
use crate::crm::leads::Lead;
use crate::crm::query::{self, Deleted, Listable, Selection};
use crate::db::DbPool;
use crate::error::{AppError, AppResult};
use crate::jobs::queue::enqueue_in;
use crate::jobs::JobContext;

/// Leads read, scored and written per statement.
pub const BATCH: usize = 2_500;
/// Connections writing scores at once in a bulk scoring.
const WRITERS: usize = 2;

/// What scores a workspace's leads right now.
#[derive(Clone)]
pub enum ActiveScorer {
    Rules,
    Model {
        version: i32,
        model: Arc<ScoringModel>,
    },
}

impl ActiveScorer {
    pub fn score(&self, lead: &LeadFacts, now: chrono::DateTime<Utc>) -> Score {
        match self {
            ActiveScorer::Rules => {
                let (score, factors) = rules::score(lead);
                Score {
                    lead_id: lead.id,
                    score: score as i16,
                    scorer: Scorer::Rules,
                    model_version: None,
                    explanation: super::Explanation { base: 0.0, factors },
                }
            }
            ActiveScorer::Model { version, model } => {
                let (score, explanation) = model.score(lead, now);
                Score {
                    lead_id: lead.id,
                    score,
                    scorer: Scorer::Model,
                    model_version: Some(*version),
                    explanation,
                }
            }
        }
    }
}

/// A loaded model (or why it would not load), for the stored row it came from.
type Loaded = (ActiveStamp, Result<Arc<ScoringModel>, String>);

pub struct ScoringService {
    db: DbPool,
    /// The last active model loaded per workspace: reloaded when the stamp changes.
    loaded: Mutex<HashMap<i64, Loaded>>,
}

impl ScoringService {
    pub fn new(db: DbPool) -> Self {
        ScoringService {
            db,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The active model of the workspace, loaded and checked (or the reason it could not be).
    async fn load(
        &self,
        conn: &mut AsyncPgConnection,
        workspace_id: i64,
    ) -> AppResult<Option<Loaded>> {
        let Some(stamp) = store::active_stamp(conn, workspace_id).await? else {
            return Ok(None);
        };
        if let Some(hit) = self.cached(workspace_id, &stamp) {
            return Ok(Some(hit));
        }
        let json = store::model_json(conn, stamp.id).await?;
        let parsed = tokio::task::spawn_blocking(move || {
            let model: ScoringModel = serde_json::from_value(json)
                .map_err(|e| format!("the stored model cannot be read: {e}"))?;
            model.validate()?;
            Ok::<_, String>(Arc::new(model))
        })
        .await
        .unwrap_or_else(|_| Err("the stored model cannot be read".into()));
        if let Err(why) = &parsed {
            tracing::error!(
                workspace_id,
                version = stamp.version,
                error = %why,
                "lead scoring model failed to load; the rule-based scorer takes over"
            );
        }
        let loaded = (stamp, parsed);
        if let Ok(mut cache) = self.loaded.lock() {
            cache.insert(workspace_id, loaded.clone());
        }
        Ok(Some(loaded))
    }

    fn cached(&self, workspace_id: i64, stamp: &ActiveStamp) -> Option<Loaded> {
        let cache = self.loaded.lock().ok()?;
        cache
            .get(&workspace_id)
            .filter(|(s, _)| s == stamp)
            .cloned()
    }

    /// The scorer of the workspace: its active model when that loads, else the rules.
    pub async fn scorer(
        &self,
        conn: &mut AsyncPgConnection,
        workspace_id: i64,
    ) -> AppResult<ActiveScorer> {
        Ok(match self.load(conn, workspace_id).await? {
            Some((stamp, loaded)) => match loaded {
                Ok(model) => ActiveScorer::Model {
                    version: stamp.version,
                    model,
                },
                Err(_) => ActiveScorer::Rules,
            },
            None => ActiveScorer::Rules,
        })
    }

    /// Why the active model does not load, if it does not.
    async fn load_error(
        &self,
        conn: &mut AsyncPgConnection,
        workspace_id: i64,
    ) -> AppResult<Option<String>> {
        Ok(self
            .load(conn, workspace_id)
            .await?
            .and_then(|(_, loaded)| loaded.err()))
    }

    /// Scores a lead the caller may see and stores the score.
    pub async fn score_lead(&self, viewer: &Viewer, lead_id: i64) -> AppResult<Score> {
        let mut conn = self.db.get().await?;
        query::get::<Lead>(&mut conn, viewer, lead_id, Deleted::Hide).await?;
        let scorer = self.scorer(&mut conn, viewer.workspace_id.0).await?;
        let facts = store::facts(&mut conn, viewer.workspace_id.0, Which::Ids(&[lead_id])).await?;
        let lead = <[LeadFacts]>::first(&facts).ok_or(AppError::NotFound(Lead::WHAT))?;
        let score = scorer.score(lead, Utc::now());
        store::write_scores(
            &mut conn,
            viewer.workspace_id.0,
            std::slice::from_ref(&score),
        )
        .await?;
        Ok(score)
    }

    /// Scores leads of a workspace in batches, reporting progress to the job; returns how
    /// many were scored (deleted ones are skipped). Writing is the slow part, so while this
    /// task reads and scores the next batch, `WRITERS` tasks write earlier ones, each on its
    /// own connection (the rows are disjoint).
    pub async fn score_leads(
        &self,
        workspace_id: i64,
        ids: &[i64],
        job: Option<&JobContext>,
    ) -> AppResult<usize> {
        let mut conn = self.db.get().await?;
        let scorer = self.scorer(&mut conn, workspace_id).await?;
        let (batches, scored) = tokio::sync::mpsc::channel::<Vec<Score>>(WRITERS);
        let scored = Arc::new(tokio::sync::Mutex::new(scored));
        let written = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (db, scored, written) = (self.db.clone(), scored.clone(), written.clone());
                let job = job.cloned();
                let total = ids.len();
                tokio::spawn(async move {
                    let mut conn = db.get().await?;
                    loop {
                        let Some(scores) = scored.lock().await.recv().await else {
                            return Ok::<(), AppError>(());
                        };
                        store::write_scores(&mut conn, workspace_id, &scores).await?;
                        let done =
                            written.fetch_add(scores.len(), Ordering::Relaxed) + scores.len();
                        if let Some(job) = &job {
                            let percent = (100 * done / total.max(1)) as i16;
                            job.progress(percent, &format!("scored {done} of {total} leads"))
                                .await?;
                        }
                    }
                })
            })
            .collect();
        for batch in ids.chunks(BATCH) {
            let facts = store::facts(&mut conn, workspace_id, Which::Ids(batch)).await?;
            let now = Utc::now();
            let scorer = scorer.clone();
            let scores = tokio::task::spawn_blocking(move || {
                facts
                    .iter()
                    .map(|l| scorer.score(l, now))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(AppError::internal)?;
            if batches.send(scores).await.is_err() {
                break; // every writer failed: their errors are below
            }
        }
        drop(batches);
        for writer in writers {
            writer.await.map_err(AppError::internal)??;
        }
        Ok(AtomicUsize::load(&written, Ordering::Relaxed))
    }

    /// Starts scoring the selected leads in the background.
    pub async fn start_bulk(
        &self,
        viewer: &Viewer,
        selection: &Selection<<Lead as Listable>::Field>,
    ) -> AppResult<i64> {
        let mut conn = self.db.get().await?;
        let lead_ids = query::selected_ids::<Lead>(&mut conn, viewer, selection).await?;
        let job = super::jobs::job_for(viewer, &ScoreLeads { lead_ids });
        enqueued(enqueue_in(&mut conn, &job).await?)
    }

    /// Starts a training for the caller's workspace (managers and admins), refused at once
    /// when the workspace has too few closed leads.
    pub async fn start_retrain(&self, viewer: &Viewer) -> AppResult<i64> {
        require_manager(viewer)?;
        let mut conn = self.db.get().await?;
        let counts = store::closed_counts(&mut conn, Some(viewer.workspace_id.0)).await?;
        let (positives, negatives) = counts
            .into_iter()
            .next()
            .map_or((0, 0), |c| (c.positives as usize, c.negatives as usize));
        model::NotEnoughData::check(positives, negatives)
            .map_err(|why| AppError::bad_input("leads", why.to_string()))?;
        let job = Retrain::job(viewer.workspace_id.0, Some(viewer.user_id.0));
        enqueued(enqueue_in(&mut conn, &job).await?)
    }

    /// Trains, stores and activates a new version, then rescores the workspace's leads in
    /// the background. `progress(percent, message)` is called from the training thread.
    pub async fn retrain(
        &self,
        workspace_id: i64,
        started_by: Option<i64>,
        progress: impl Fn(i16, &str) + Send + 'static,
    ) -> AppResult<ModelRow> {
        let mut conn = self.db.get().await?;
        let leads = store::facts(&mut conn, workspace_id, Which::Closed).await?;
        let started = std::time::Instant::now();
        let trained = tokio::task::spawn_blocking(move || {
            model::train(&leads, Utc::now(), |p, m| progress(p, m))
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|why| AppError::bad_input("leads", why.to_string()))?;
        let training_ms = started.elapsed().as_millis() as i64;
        let row = conn
            .transaction::<_, AppError, _>(async move |conn| {
                let row = store::save_model(conn, workspace_id, &trained, training_ms, started_by)
                    .await?;
                rescore_all(conn, workspace_id).await?;
                Ok(row)
            })
            .await?;
        Ok(row)
    }

    pub async fn models(&self, viewer: &Viewer) -> AppResult<Vec<(ModelRow, Option<String>)>> {
        let mut conn = self.db.get().await?;
        let rows = store::models(&mut conn, viewer.workspace_id.0).await?;
        let error = self.load_error(&mut conn, viewer.workspace_id.0).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let error = if row.active { error.clone() } else { None };
                (row, error)
            })
            .collect())
    }

    pub async fn active_model(
        &self,
        viewer: &Viewer,
    ) -> AppResult<Option<(ModelRow, Option<String>)>> {
        let mut conn = self.db.get().await?;
        let Some(row) = store::active_model(&mut conn, viewer.workspace_id.0).await? else {
            return Ok(None);
        };
        let error = self.load_error(&mut conn, viewer.workspace_id.0).await?;
        Ok(Some((row, error)))
    }

    /// Makes `version` active (managers and admins) and rescores the leads with it; returns
    /// it with why it does not load, if it does not.
    pub async fn activate(
        &self,
        viewer: &Viewer,
        version: i32,
    ) -> AppResult<(ModelRow, Option<String>)> {
        require_manager(viewer)?;
        let workspace_id = viewer.workspace_id.0;
        let mut conn = self.db.get().await?;
        let row = conn
            .transaction::<_, AppError, _>(async move |conn| {
                let row = store::activate(conn, workspace_id, version).await?;
                rescore_all(conn, workspace_id).await?;
                Ok(row)
            })
            .await?;
        let error = self.load_error(&mut conn, workspace_id).await?;
        Ok((row, error))
    }

    /// Score bands of the leads the caller may see.
    pub async fn stats(&self, viewer: &Viewer) -> AppResult<StatsRow> {
        let mut conn = self.db.get().await?;
        let mut sql = crate::crm::sql::Sql::new(store::STATS_SQL);
        sql.append(query::scope(viewer, &Lead::TABLE, Deleted::Hide));
        Ok(sql.into_query().get_result(&mut conn).await?)
    }
}

/// Training, activating and the model registry's writes are for managers and admins.
fn require_manager(viewer: &Viewer) -> AppResult<()> {
    if viewer.role == Role::Member {
        return Err(AppError::forbidden(
            "only managers and admins may train or activate lead scoring models",
        ));
    }
    Ok(())
}

fn enqueued(id: Option<i64>) -> AppResult<i64> {
    id.ok_or_else(|| AppError::conflict("the same job is already waiting or running"))
}

/// Enqueues rescoring every live lead of the workspace (after the model changed).
async fn rescore_all(conn: &mut AsyncPgConnection, workspace_id: i64) -> AppResult<()> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let lead_ids: Vec<i64> = diesel::sql_query(
        "SELECT id FROM leads WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY id",
    )
    .bind::<diesel::sql_types::BigInt, _>(workspace_id)
    .load::<Id>(conn)
    .await?
    .into_iter()
    .map(|r| r.id)
    .collect();
    if lead_ids.is_empty() {
        return Ok(());
    }
    enqueue_in(conn, &ScoreLeads::job(workspace_id, lead_ids)).await?;
    Ok(())
}
