//! The composition root: configuration, the pool and the domain services one process shares.
//! Transport layers hold an `Arc<App>`; domains never see it.

use std::sync::Arc;

use crate::auth::AuthService;
use crate::config::Config;
use crate::crm::CrmService;
use crate::db::DbPool;
use crate::events::live::LiveHub;
use crate::imports::service::ImportService;
use crate::jobs::api::JobService;
use crate::jobs::schedule::{self, Scheduler};
use crate::mail::LazyMailer;
use crate::notifications::service::NotificationService;
use crate::scoring::service::ScoringService;
use crate::workflows::service::WorkflowService;

pub struct App {
    pub config: Config,
    pub db: DbPool,
    pub auth: AuthService,
    pub crm: CrmService,
    pub jobs: JobService,
    pub imports: ImportService,
    pub scoring: ScoringService,
    pub workflows: WorkflowService,
    /// The built-in schedules; ticked by the process's workers, listed and triggered by admins.
    pub scheduler: Arc<Scheduler>,
    /// The mailer workflows and notifications send through.
    pub mail: LazyMailer,
    pub notifications: NotificationService,
    /// This process's live subscriptions (`notificationReceived`, `recordChanged`).
    pub live: LiveHub,
    /// For the connections outside the pool: LISTEN, and COPY for exports.
    pub database_url: String,
    /// CSV exports running now, each on its own COPY connection
    /// (`ImportConfig::max_concurrent_exports`).
    pub export_slots: Arc<tokio::sync::Semaphore>,
}

impl App {
    /// `database_url` is for the connections outside the pool (LISTEN, COPY).
    pub fn new(config: Config, db: DbPool, database_url: &str, jwt_secret: &[u8]) -> Arc<Self> {
        let auth = AuthService::new(db.clone(), jwt_secret, config.auth.clone());
        let crm = CrmService::new(db.clone());
        let jobs = JobService::new(db.clone());
        let imports = ImportService::new(db.clone(), config.imports.clone());
        let scoring = ScoringService::new(db.clone());
        let workflows = WorkflowService::new(db.clone(), config.workflows.clone());
        let mail = LazyMailer::new(config.mail.clone());
        let notifications = NotificationService::new(
            db.clone(),
            crate::notifications::gateways(&config.notifications),
        );
        let live = LiveHub::new(
            db.clone(),
            database_url.to_string(),
            config.live.clone(),
            auth.session_cache(),
        );
        let scheduler = Arc::new(Scheduler::new(db.clone(), schedule::builtin()));
        let export_slots = Arc::new(tokio::sync::Semaphore::new(
            config.imports.max_concurrent_exports,
        ));
        Arc::new(App {
            config,
            db,
            auth,
            crm,
            jobs,
            imports,
            scoring,
            workflows,
            scheduler,
            mail,
            notifications,
            live,
            database_url: database_url.to_string(),
            export_slots,
        })
    }
}
