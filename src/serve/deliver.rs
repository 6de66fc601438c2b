//! Outbox delivery inside the service: one [`Deliverer`] per kind of
//! outbox row, each pass claiming due rows under a lease
//! (`store::OutboxStore`), so `outbox flush` or another sender may run
//! beside the service. Email is the kind there is; a webhook deliverer is
//! one more implementation of the trait, added to `Config::deliverers`.

use crate::mail::{Mailer, Mode};
use crate::store::OutboxStore;
use std::time::Duration;

/// Delivers one kind of outbox row.
pub trait Deliverer: Send {
    /// The `kind` of the rows (`email`, later `webhook`).
    fn kind(&self) -> &'static str;
    /// One pass over the due rows; a line for the log when it did something
    /// worth saying.
    fn pass(&mut self) -> Option<String>;
    /// The longest one pass may take: shutdown waits this long at most.
    fn deadline(&self) -> Duration;
}

/// Email through the SMTP sender `herald run --smtp` uses.
pub struct EmailDeliverer {
    mailer: Mailer,
    outbox: OutboxStore,
}

impl EmailDeliverer {
    pub fn new(mailer: Mailer, outbox: OutboxStore) -> EmailDeliverer {
        EmailDeliverer { mailer, outbox }
    }
}

impl Deliverer for EmailDeliverer {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn pass(&mut self) -> Option<String> {
        match self.mailer.deliver(&self.outbox, Mode::Due) {
            Ok(r) if r.sent == 0 && r.failed == 0 && r.connection_error.is_none() => None,
            Ok(r) => {
                let mut line = format!("{} sent, {} failed, {} waiting", r.sent, r.failed, r.remaining);
                if let Some(e) = r.connection_error {
                    line.push_str(&format!(" ({e})"));
                }
                Some(line)
            }
            Err(e) => Some(format!("delivery failed: {e}")),
        }
    }

    fn deadline(&self) -> Duration {
        self.mailer.config().deadline
    }
}

/// Webhooks through the HTTP sender `herald run` and `outbox flush` use.
/// The outbox connection is opened at the first pass: the service creates
/// the store after its first compile.
pub struct WebhookDeliverer {
    sender: crate::webhook::Sender,
    db: std::path::PathBuf,
    outbox: Option<OutboxStore>,
}

impl WebhookDeliverer {
    pub fn new(sender: crate::webhook::Sender, db: std::path::PathBuf) -> WebhookDeliverer {
        WebhookDeliverer { sender, db, outbox: None }
    }
}

impl Deliverer for WebhookDeliverer {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn pass(&mut self) -> Option<String> {
        if self.outbox.is_none() {
            match OutboxStore::open(&self.db) {
                Ok(o) => self.outbox = Some(o),
                Err(e) => return Some(format!("cannot open the outbox: {e}")),
            }
        }
        let outbox = self.outbox.as_ref()?;
        match self.sender.deliver(outbox, Mode::Due) {
            Ok(r) if r.sent == 0 && r.failed == 0 && r.given_up == 0 => None,
            Ok(r) => {
                let mut line = format!(
                    "webhooks: {} sent, {} failed, {} given up, {} waiting",
                    r.sent, r.failed, r.given_up, r.remaining
                );
                if let Some(e) = r.last_error {
                    line.push_str(&format!(" (last error: {e})"));
                }
                Some(line)
            }
            Err(e) => Some(format!("webhook delivery failed: {e}")),
        }
    }

    fn deadline(&self) -> Duration {
        self.sender.config().timeout
    }
}
