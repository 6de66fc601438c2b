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
