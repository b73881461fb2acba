//! Notifications over GraphQL: the viewer's own notifications (the bell), preferences and
//! deliveries; comments with mentions and threads; following records.

use async_graphql::{Context, Enum, InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::history::RecordKind;
use super::ids::{decode_after, parse_id, to_id};
use super::leads::load_user;
use super::users::User;
use crate::auth::UserId;
use crate::notifications::comments::CommentRow;
use crate::notifications::preferences::{Channel, Kind, Preferences, PreferencesPatch, ALL_DAYS};
use crate::notifications::store::{DeliveryRow, NotificationRow};

/// Why a notification was sent.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::notifications::preferences::Kind")]
pub enum NotificationKind {
    /// @you in a comment.
    Mention,
    /// A record or task assigned to you.
    Assignment,
    /// A comment on a record you own, are assigned or follow.
    Comment,
    /// Someone else changed a record you own, are assigned or follow.
    Update,
    /// A task of yours is due soon or overdue.
    Reminder,
    /// A workflow's send_notification action.
    Workflow,
    /// Something the system did for you (an import finished, a job failed).
    System,
}

/// Where a notification reaches someone.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::notifications::preferences::Channel")]
pub enum NotificationChannel {
    /// The bell (and `notificationReceived`).
    InApp,
    /// Mail through the server's SMTP relay.
    Email,
    /// The configured push gateway.
    Push,
    /// The configured SMS gateway.
    Sms,
}

/// How often a digest mail comes.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::notifications::preferences::Digest")]
pub enum DigestFrequency {
    /// No digest.
    Off,
    /// Every day at the digest time.
    Daily,
    /// Once a week, on the digest weekday at the digest time.
    Weekly,
}

/// Where a delivery outside the app stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DeliveryStatus {
    /// Waiting for the user's do-not-disturb hours to end.
    Held,
    /// Queued, or failed and to be retried.
    Pending,
    /// Handed to the mail server or gateway.
    Sent,
    /// Given up: the error says why.
    Failed,
}

impl DeliveryStatus {
    fn parse(text: &str) -> Self {
        match text {
            "held" => DeliveryStatus::Held,
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }

    fn stored(self) -> &'static str {
        match self {
            DeliveryStatus::Held => "held",
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        }
    }
}

pub struct Notification(pub NotificationRow);

/// Something you were told.
#[Object]
impl Notification {
    /// Unique ID of the notification.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Why you were told.
    async fn kind(&self) -> NotificationKind {
        Kind::parse(&self.0.kind).unwrap_or(Kind::System).into()
    }
    /// One line, for the bell's list.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The details in plain text.
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// The kind of record it is about, if any.
    async fn record_type(&self) -> Option<RecordKind> {
        self.0.entity.as_deref().and_then(RecordKind::from_entity)
    }
    /// The record it is about, if any.
    async fn record_id(&self) -> Option<ID> {
        self.0.record_id.map(to_id)
    }
    /// Who caused it.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.actor_id.map(UserId)).await
    }
    /// Details: the changed `fields`, the `comment_id`, the workflow's `run_id`, ...
    async fn data(&self) -> Json<Value> {
        Json(self.0.data.clone())
    }
    /// Whether you have read it.
    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
    /// When you read it.
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
    /// When it was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

crate::graphql::connection::connection_types!(
    NotificationConnection,
    NotificationEdge,
    Notification
);

pub struct NotificationDelivery(DeliveryRow);

/// One notification on one outside channel (email, push, SMS).
#[Object]
impl NotificationDelivery {
    /// Unique ID of the delivery.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The notification delivered.
    async fn notification_id(&self) -> ID {
        to_id(self.0.notification_id)
    }
    /// Where it goes.
    async fn channel(&self) -> NotificationChannel {
        Channel::parse(&self.0.channel)
            .unwrap_or(Channel::Email)
            .into()
    }
    /// Where it stands.
    async fn status(&self) -> DeliveryStatus {
        DeliveryStatus::parse(&self.0.status)
    }
    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// The last attempt's error.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// When it goes (later than its creation when held by do-not-disturb).
    async fn deliver_at(&self) -> DateTime<Utc> {
        self.0.deliver_at
    }
    /// When it was handed over.
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
    /// When it was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

crate::graphql::connection::connection_types!(
    NotificationDeliveryConnection,
    NotificationDeliveryEdge,
    NotificationDelivery
);

/// Whether one event type reaches one channel.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "NotificationSwitchInput")]
pub struct NotificationSwitch {
    /// The event type.
    pub kind: NotificationKind,
    /// The channel.
    pub channel: NotificationChannel,
    /// Whether that type reaches you there.
    pub enabled: bool,
}

/// Channels on or off.
#[derive(SimpleObject, InputObject, Default)]
#[graphql(input_name = "NotificationChannelsInput")]
pub struct NotificationChannels {
    /// The bell (on unless switched off).
    pub in_app: Option<bool>,
    /// Mail (on unless switched off).
    pub email: Option<bool>,
    /// The push gateway (off unless switched on; the server needs one).
    pub push: Option<bool>,
    /// SMS (off unless switched on; needs `smsNumber` and a server gateway).
    pub sms: Option<bool>,
}

/// Quiet hours: email, push and SMS wait until they end; the bell still fills.
#[derive(SimpleObject)]
pub struct DoNotDisturb {
    /// Whether the quiet hours apply.
    pub enabled: bool,
    /// Local time (HH:MM) the quiet hours start.
    pub start: String,
    /// Local time (HH:MM) they end; before `start` means the next day.
    pub end: String,
    /// ISO weekdays (1 = Monday) the quiet hours start on.
    pub days: Vec<i32>,
}

/// A change to the quiet hours; omitted fields stay.
#[derive(InputObject)]
pub struct DoNotDisturbInput {
    /// Whether the quiet hours apply.
    pub enabled: Option<bool>,
    /// Local start time, HH:MM.
    pub start: Option<String>,
    /// Local end time, HH:MM (before `start`: the next day).
    pub end: Option<String>,
    /// ISO weekdays (1 = Monday) the quiet hours start on.
    pub days: Option<Vec<i32>>,
}

/// Your notification preferences.
#[derive(SimpleObject)]
pub struct NotificationPreferences {
    /// IANA timezone your digests and quiet hours are read in.
    pub timezone: String,
    /// Channels on or off.
    pub channels: NotificationChannels,
    /// Every event type × channel with whether it reaches you.
    pub matrix: Vec<NotificationSwitch>,
    /// How often a digest mail comes.
    pub digest: DigestFrequency,
    /// ISO weekday (1 = Monday) of a weekly digest.
    pub digest_weekday: i32,
    /// Local time (HH:MM) the digest comes.
    pub digest_time: String,
    /// Quiet hours.
    pub do_not_disturb: DoNotDisturb,
    /// E.164 number for SMS.
    pub sms_number: Option<String>,
}

impl From<Preferences> for NotificationPreferences {
    fn from(p: Preferences) -> Self {
        let hm = |t: chrono::NaiveTime| t.format("%H:%M").to_string();
        NotificationPreferences {
            timezone: p.timezone.name().to_string(),
            channels: NotificationChannels {
                in_app: Some(p.channel_on(Channel::InApp)),
                email: Some(p.channel_on(Channel::Email)),
                push: Some(p.channel_on(Channel::Push)),
                sms: Some(p.channel_on(Channel::Sms)),
            },
            matrix: Kind::ALL
                .into_iter()
                .flat_map(|k| Channel::ALL.into_iter().map(move |c| (k, c)))
                .map(|(k, c)| NotificationSwitch {
                    kind: k.into(),
                    channel: c.into(),
                    enabled: p.wants(k, c),
                })
                .collect(),
            digest: p.digest.into(),
            digest_weekday: p.digest_weekday.number_from_monday() as i32,
            digest_time: hm(p.digest_time),
            do_not_disturb: DoNotDisturb {
                enabled: p.quiet.enabled,
                start: hm(p.quiet.start),
                end: hm(p.quiet.end),
                days: ALL_DAYS
                    .iter()
                    .filter(|d| p.quiet.days.contains(d))
                    .map(|d| d.number_from_monday() as i32)
                    .collect(),
            },
            sms_number: p.sms_number,
        }
    }
}

/// Input of `updateNotificationPreferences`; omitted fields stay.
#[derive(InputObject, Default)]
pub struct UpdateNotificationPreferencesInput {
    /// IANA timezone name (`Europe/Paris`).
    pub timezone: Option<String>,
    /// Channels to switch; omitted ones stay.
    pub channels: Option<NotificationChannels>,
    /// Event type × channel switches to set; omitted ones stay.
    pub matrix: Option<Vec<NotificationSwitch>>,
    /// How often a digest mail comes.
    pub digest: Option<DigestFrequency>,
    /// ISO weekday (1 = Monday) of a weekly digest.
    pub digest_weekday: Option<i32>,
    /// Local time of the digest, HH:MM.
    pub digest_time: Option<String>,
    /// Quiet hours.
    pub do_not_disturb: Option<DoNotDisturbInput>,
    /// E.164 (`+14155550123`); empty clears it.
    pub sms_number: Option<String>,
}

impl From<UpdateNotificationPreferencesInput> for PreferencesPatch {
    fn from(input: UpdateNotificationPreferencesInput) -> Self {
        let channels = input.channels.unwrap_or_default();
        let quiet = input.do_not_disturb;
        PreferencesPatch {
            timezone: input.timezone,
            channels: [
                (Channel::InApp, channels.in_app),
                (Channel::Email, channels.email),
                (Channel::Push, channels.push),
                (Channel::Sms, channels.sms),
            ]
            .into_iter()
            .filter_map(|(c, on)| on.map(|on| (c, on)))
            .collect(),
            matrix: input
                .matrix
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.kind.into(), s.channel.into(), s.enabled))
                .collect(),
            digest: input.digest.map(Into::into),
            digest_weekday: input.digest_weekday,
            digest_time: input.digest_time,
            quiet_enabled: quiet.as_ref().and_then(|q| q.enabled),
            quiet_start: quiet.as_ref().and_then(|q| q.start.clone()),
            quiet_end: quiet.as_ref().and_then(|q| q.end.clone()),
            quiet_days: quiet.and_then(|q| q.days),
            sms_number: input.sms_number,
        }
    }
}

pub struct Comment(pub CommentRow);

/// A comment on a record.
#[Object]
impl Comment {
    /// Unique ID of the comment.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// The kind of record commented on.
    async fn record_type(&self) -> Option<RecordKind> {
        RecordKind::from_entity(&self.0.entity)
    }
    /// The record commented on.
    async fn record_id(&self) -> ID {
        to_id(self.0.record_id)
    }
    /// The thread's first comment, for a reply.
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_id.map(to_id)
    }
    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, Some(UserId(self.0.author_id))).await
    }
    /// The text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The users the body mentions.
    async fn mentions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let ids: Vec<UserId> = self.0.mentions.iter().copied().map(UserId).collect();
        let mut found = super::context::loader::<super::loaders::UserLoader>(ctx)
            .load_many(ids.iter().copied())
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id))
            .map(User)
            .collect())
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When its text last changed.
    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }
}

/// Input of `addComment`.
#[derive(InputObject)]
pub struct AddCommentInput {
    /// The kind of record to comment on.
    pub record_type: RecordKind,
    /// The record (one you may see).
    pub record_id: ID,
    /// 1 to 10,000 characters; `@email` or `@handle` mentions a user of the workspace.
    pub body: String,
    /// The comment this one answers.
    pub parent_id: Option<ID>,
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// Your notifications, newest first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only the unread ones.", default = false)] unread_only: bool,
        #[graphql(desc = "How many (1-200, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (older ones).")] after: Option<String>,
    ) -> async_graphql::Result<NotificationConnection> {
        let viewer = viewer(ctx)?;
        let page = app(ctx)
            .notifications
            .notifications(
                viewer,
                unread_only,
                decode_after(after.as_deref()).gql()?,
                i64::from(first.unwrap_or(20)),
            )
            .await
            .gql()?;
        Ok(NotificationConnection::from_page(
            page,
            |n| n.id,
            Notification,
        ))
    }

    /// How many of your notifications are unread (the bell's number).
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let viewer = viewer(ctx)?;
        app(ctx).notifications.unread_count(viewer).await.gql()
    }

    /// Your notification preferences (defaults until you change them).
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<NotificationPreferences> {
        let viewer = viewer(ctx)?;
        Ok(app(ctx)
            .notifications
            .preferences(viewer)
            .await
            .gql()?
            .into())
    }

    /// Your notifications' deliveries by email, push and SMS, newest first.
    async fn notification_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only those in this status.")] status: Option<DeliveryStatus>,
        #[graphql(desc = "How many (1-200, default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (older ones).")] after: Option<String>,
    ) -> async_graphql::Result<NotificationDeliveryConnection> {
        let viewer = viewer(ctx)?;
        let page = app(ctx)
            .notifications
            .deliveries(
                viewer,
                status.map(DeliveryStatus::stored),
                decode_after(after.as_deref()).gql()?,
                i64::from(first.unwrap_or(20)),
            )
            .await
            .gql()?;
        Ok(NotificationDeliveryConnection::from_page(
            page,
            |d| d.id,
            NotificationDelivery,
        ))
    }

    /// A record's comments, oldest first (at most 500).
    async fn comments(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of record.")] record_type: RecordKind,
        #[graphql(desc = "The record.")] record_id: ID,
    ) -> async_graphql::Result<Vec<Comment>> {
        let viewer = viewer(ctx)?;
        let id = parse_id("recordId", &record_id).gql()?;
        Ok(app(ctx)
            .notifications
            .comments(viewer, record_type.entity(), id)
            .await
            .gql()?
            .into_iter()
            .map(Comment)
            .collect())
    }

    /// Whether you follow a record.
    async fn following(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of record.")] record_type: RecordKind,
        #[graphql(desc = "The record.")] record_id: ID,
    ) -> async_graphql::Result<bool> {
        let viewer = viewer(ctx)?;
        let id = parse_id("recordId", &record_id).gql()?;
        app(ctx)
            .notifications
            .follows(viewer, record_type.entity(), id)
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks some of your notifications read; returns how many changed.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Up to 1,000 notification IDs; others' are ignored.")] ids: Vec<ID>,
    ) -> async_graphql::Result<i32> {
        let viewer = viewer(ctx)?;
        let ids = ids
            .iter()
            .map(|id| parse_id("ids", id))
            .collect::<Result<Vec<_>, _>>()
            .gql()?;
        let n = app(ctx).notifications.mark_read(viewer, &ids).await.gql()?;
        Ok(n as i32)
    }

    /// Marks all your notifications read; returns how many changed.
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let viewer = viewer(ctx)?;
        let n = app(ctx).notifications.mark_all_read(viewer).await.gql()?;
        Ok(n as i32)
    }

    /// Changes your notification preferences (checked: timezone, times, days, numbers).
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The changes; omitted fields stay.")]
        input: UpdateNotificationPreferencesInput,
    ) -> async_graphql::Result<NotificationPreferences> {
        let viewer = viewer(ctx)?;
        Ok(app(ctx)
            .notifications
            .update_preferences(viewer, input.into())
            .await
            .gql()?
            .into())
    }

    /// Comments on a record you may see; mentioned users and the record's people are told.
    async fn add_comment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The record, the text and the comment answered.")] input: AddCommentInput,
    ) -> async_graphql::Result<Comment> {
        let viewer = viewer(ctx)?;
        let record = parse_id("recordId", &input.record_id).gql()?;
        let parent = input
            .parent_id
            .as_ref()
            .map(|p| parse_id("parentId", p))
            .transpose()
            .gql()?;
        Ok(Comment(
            app(ctx)
                .notifications
                .add_comment(
                    viewer,
                    input.record_type.entity(),
                    record,
                    &input.body,
                    parent,
                )
                .await
                .gql()?,
        ))
    }

    /// Changes your comment's text.
    async fn edit_comment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Your comment.")] id: ID,
        #[graphql(desc = "The new text.")] body: String,
    ) -> async_graphql::Result<Comment> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        Ok(Comment(
            app(ctx)
                .notifications
                .edit_comment(viewer, id, &body)
                .await
                .gql()?,
        ))
    }

    /// Deletes your comment.
    async fn delete_comment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Your comment.")] id: ID,
    ) -> async_graphql::Result<bool> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        app(ctx)
            .notifications
            .delete_comment(viewer, id)
            .await
            .gql()?;
        Ok(true)
    }

    /// Hears about a record's comments and changes (owners and assignees do anyway).
    /// Returns whether you follow it now (true).
    async fn follow_record(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of record.")] record_type: RecordKind,
        #[graphql(desc = "A record you may see.")] record_id: ID,
    ) -> async_graphql::Result<bool> {
        let viewer = viewer(ctx)?;
        let id = parse_id("recordId", &record_id).gql()?;
        app(ctx)
            .notifications
            .follow(viewer, record_type.entity(), id)
            .await
            .gql()?;
        Ok(true)
    }

    /// Stops following a record. Returns whether you follow it now (false).
    async fn unfollow_record(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The kind of record.")] record_type: RecordKind,
        #[graphql(desc = "The record.")] record_id: ID,
    ) -> async_graphql::Result<bool> {
        let viewer = viewer(ctx)?;
        let id = parse_id("recordId", &record_id).gql()?;
        app(ctx)
            .notifications
            .unfollow(viewer, record_type.entity(), id)
            .await
            .gql()?;
        Ok(false)
    }
}
