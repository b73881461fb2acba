//! A delivery outside the app: one job per notification and channel. Email goes through
//! lettre; push and SMS are a JSON POST to the configured gateway with its bearer token.
//! Each attempt is recorded on the delivery (`notificationDeliveries` shows it); failures are
//! retried with the job queue's backoff, and a refusal that cannot get better (a 4xx, a bad
//! address) fails the delivery at once. Delivery is at least once: every attempt carries the
//! same `X-MyCRM-Delivery` header (and mail the same Message-ID) so a receiver can tell.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::Gateway;
use crate::jobs::{new_job, Job, JobContext, NewJob};

/// How long a gateway may take to answer.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest SMS text sent (two concatenated messages).
const SMS_CHARS: usize = 300;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverNotification {
    pub delivery_id: i64,
}

impl DeliverNotification {
    pub fn job(workspace_id: i64, delivery_id: i64, at: DateTime<Utc>) -> NewJob {
        let mut job = new_job(&DeliverNotification { delivery_id });
        job.workspace_id = Some(workspace_id);
        job.run_at = Some(at);
        job
    }
}

#[derive(QueryableByName)]
struct Parcel {
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    notification_id: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    message: String,
    #[diesel(sql_type = Nullable<Text>)]
    entity: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    record_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Nullable<Text>)]
    sms_number: Option<String>,
}

/// Why an attempt failed, and whether trying again can help.
struct Failure {
    message: String,
    permanent: bool,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            permanent: true,
        }
    }
}

impl Job for DeliverNotification {
    const KIND: &'static str = "notification.deliver";
    const MAX_ATTEMPTS: i32 = 5;

    async fn run(self, ctx: JobContext) -> Result<Value, String> {
        let mut conn = ctx.app.db.get().await.map_err(|e| e.to_string())?;
        let id = self.delivery_id;
        let parcel: Parcel = diesel::sql_query(
            "SELECT d.channel, d.status, n.id AS notification_id, n.kind, n.title, n.message, \
               n.entity, n.record_id, u.id AS user_id, u.email, p.sms_number \
             FROM notification_deliveries d \
             JOIN notifications n ON n.id = d.notification_id \
             JOIN users u ON u.id = d.user_id \
             LEFT JOIN notification_preferences p ON p.user_id = d.user_id \
             WHERE d.id = $1",
        )
        .bind::<BigInt, _>(id)
        .get_result(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
        if matches!(parcel.status.as_str(), "sent" | "failed") {
            return Ok(json!({ "status": parcel.status }));
        }
        record(&mut conn, id, "pending", None, true).await?;
        let outcome = send(&ctx, id, &parcel).await;
        match outcome {
            Ok(()) => {
                record(&mut conn, id, "sent", None, false).await?;
                Ok(json!({ "status": "sent", "channel": parcel.channel }))
            }
            Err(failure) if failure.permanent => {
                record(&mut conn, id, "failed", Some(&failure.message), false).await?;
                Ok(json!({ "status": "failed", "error": failure.message }))
            }
            Err(failure) => {
                let last = ctx.attempt >= Self::MAX_ATTEMPTS;
                let status = if last { "failed" } else { "pending" };
                record(&mut conn, id, status, Some(&failure.message), false).await?;
                Err(failure.message)
            }
        }
    }
}

/// Notes an attempt's start (`attempt`: counts it) or its outcome on the delivery.
async fn record(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: &str,
    error: Option<&str>,
    attempt: bool,
) -> Result<(), String> {
    diesel::sql_query(
        "UPDATE notification_deliveries SET status = $2, \
           error = CASE WHEN $4 THEN error ELSE $3 END, \
           attempts = attempts + CASE WHEN $4 THEN 1 ELSE 0 END, \
           sent_at = CASE WHEN $2 = 'sent' THEN now() END, updated_at = now() \
         WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(error)
    .bind::<diesel::sql_types::Bool, _>(attempt)
    .execute(conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

async fn send(ctx: &JobContext, delivery: i64, parcel: &Parcel) -> Result<(), Failure> {
    let config = &ctx.app.config.notifications;
    let missing = |what: &str| Failure::permanent(format!("this server has no {what} gateway"));
    match parcel.channel.as_str() {
        "email" => {
            let mailer = ctx.app.mail.get().map_err(Failure::permanent)?;
            let body = match (&parcel.entity, parcel.record_id) {
                (Some(entity), Some(record)) => {
                    format!("{}\n\n({entity} {record})", parcel.message)
                }
                _ => parcel.message.clone(),
            };
            mailer
                .send(crate::mail::Email {
                    to: &parcel.email,
                    cc: None,
                    subject: &parcel.title,
                    body: &body,
                    message_id: Some(format!("<notification-{delivery}@mycrm>")),
                })
                .await
                .map_err(|e| Failure {
                    message: e.message,
                    permanent: e.permanent,
                })
        }
        "push" => {
            let gateway = config.push.as_ref().ok_or_else(|| missing("push"))?;
            let payload = json!({
                "delivery_id": delivery,
                "notification_id": parcel.notification_id,
                "user_id": parcel.user_id,
                "user_email": parcel.email,
                "kind": parcel.kind,
                "title": parcel.title,
                "message": parcel.message,
                "entity": parcel.entity,
                "record_id": parcel.record_id,
            });
            post(gateway, delivery, &payload).await
        }
        "sms" => {
            let gateway = config.sms.as_ref().ok_or_else(|| missing("SMS"))?;
            let to = parcel
                .sms_number
                .as_deref()
                .ok_or_else(|| Failure::permanent("the user has no SMS number any more"))?;
            let text: String = format!("{}: {}", parcel.title, parcel.message)
                .chars()
                .take(SMS_CHARS)
                .collect();
            post(gateway, delivery, &json!({ "to": to, "text": text })).await
        }
        other => Err(Failure::permanent(format!("unknown channel {other}"))),
    }
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(GATEWAY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// POSTs to a gateway: 2xx is delivered; 408, 429 and 5xx are worth another try; any other
/// answer will not change.
async fn post(gateway: &Gateway, delivery: i64, payload: &Value) -> Result<(), Failure> {
    let mut request = client()
        .post(&gateway.url)
        .header("X-MyCRM-Delivery", delivery.to_string())
        .json(payload);
    if let Some(token) = &gateway.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| Failure {
        // Without the URL: it may carry credentials.
        message: format!("the gateway could not be reached: {}", e.without_url()),
        permanent: false,
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    Err(Failure {
        message: format!("the gateway answered {status}"),
        permanent: status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS,
    })
}
