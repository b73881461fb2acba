//! Outgoing email through lettre: SMTP when `MYCRM_SMTP_URL` is set (`smtps://user:pass@host`,
//! `smtp://host:port?tls=required`, or plain `smtp://host:port` for a local relay), otherwise
//! `.eml` files under `<data dir>/mail` so development never mails anyone by accident.
//! Workflows use it now; notifications and digests will.

use std::path::PathBuf;

use lettre::message::{header::ContentType, Mailbox, Mailboxes};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Where mail goes and who it is from.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// An SMTP URL; `None` writes `.eml` files to `dir`. May hold a password: never logged.
    pub smtp_url: Option<String>,
    pub from: String,
    pub dir: PathBuf,
}

impl MailConfig {
    pub fn new(data_dir: &std::path::Path) -> Self {
        MailConfig {
            smtp_url: None,
            from: "MyCRM <no-reply@mycrm.localhost>".into(),
            dir: data_dir.join("mail"),
        }
    }
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// The mailer of a process, set up on first use: a bad mail configuration fails the work that
/// mails (workflow steps, notification deliveries), not the server.
pub struct LazyMailer {
    config: MailConfig,
    mailer: std::sync::OnceLock<Result<Mailer, String>>,
}

impl LazyMailer {
    pub fn new(config: MailConfig) -> Self {
        LazyMailer {
            config,
            mailer: std::sync::OnceLock::new(),
        }
    }

    pub fn get(&self) -> Result<&Mailer, String> {
        self.mailer
            .get_or_init(|| Mailer::new(&self.config).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Sends one plain email in the background and logs a failure: for mail whose sending
    /// must neither hold a request nor show in its timing (sign-up). Nothing retries it; mail
    /// that must arrive goes through a job (`notifications::delivery`).
    pub fn send_in_background(&self, to: String, subject: &'static str, body: String) {
        let mailer = match self.get() {
            Ok(mailer) => mailer.clone(),
            Err(error) => return tracing::warn!(%error, subject, "mail not sent"),
        };
        tokio::spawn(async move {
            let email = Email {
                to: &to,
                cc: None,
                subject,
                body: &body,
                message_id: None,
            };
            if let Err(error) = mailer.send(email).await {
                tracing::warn!(error = %error.message, subject, "mail not sent");
            }
        });
    }
}

/// Sends mail; cheap to clone (SMTP connections are pooled inside).
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// One email.
pub struct Email<'a> {
    pub to: &'a str,
    pub cc: Option<&'a str>,
    pub subject: &'a str,
    pub body: &'a str,
    /// A stable ID (`<run-1-step-2@mycrm>`), so a resent message is recognisable as the same.
    pub message_id: Option<String>,
}

/// A problem sending: `permanent` ones (a bad address) do not get better by retrying.
#[derive(Debug)]
pub struct MailError {
    pub message: String,
    pub permanent: bool,
}

impl Mailer {
    pub fn new(config: &MailConfig) -> anyhow::Result<Mailer> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| anyhow::anyhow!("the mail sender {:?} is not an address", config.from))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|_| anyhow::anyhow!("MYCRM_SMTP_URL is not a valid SMTP URL"))?
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(&config.dir)?;
                Transport::Files(AsyncFileTransport::<Tokio1Executor>::new(&config.dir))
            }
        };
        Ok(Mailer { transport, from })
    }

    pub async fn send(&self, email: Email<'_>) -> Result<(), MailError> {
        let permanent = |message: String| MailError {
            message,
            permanent: true,
        };
        let to = mailboxes(email.to).map_err(permanent)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(email.subject)
            .message_id(email.message_id)
            .header(ContentType::TEXT_PLAIN);
        for mailbox in to {
            builder = builder.to(mailbox);
        }
        if let Some(cc) = email.cc.filter(|c| !c.trim().is_empty()) {
            for mailbox in mailboxes(cc).map_err(permanent)? {
                builder = builder.cc(mailbox);
            }
        }
        let message = builder
            .body(email.body.to_string())
            .map_err(|e| permanent(format!("the message could not be built: {e}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| MailError {
                message: format!("the mail server refused or failed: {e}"),
                permanent: e.is_permanent(),
            }),
            Transport::Files(files) => {
                files
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| MailError {
                        message: format!("the mail file could not be written: {e}"),
                        permanent: false,
                    })
            }
        }
    }
}

/// Comma-separated addresses.
fn mailboxes(list: &str) -> Result<Vec<Mailbox>, String> {
    let parsed: Mailboxes = list
        .parse()
        .map_err(|_| format!("{list:?} is not a list of email addresses"))?;
    let all: Vec<Mailbox> = parsed.into_iter().collect();
    if all.is_empty() {
        return Err("no email address given".into());
    }
    Ok(all)
}
