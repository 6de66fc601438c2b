//! The registry of actions: one entry per action statement.
//!
//! The checker resolves an action's arguments against these parameters,
//! takes enumerated choices (`severity`, `level`) from them, and builds its
//! "did you mean" lists and help texts from the names; the docs table of
//! actions is generated from them. What an action *does* is an effect value
//! the interpreter produces (`crate::effect`), applied by the engine.

use super::Param;
use crate::ir::{HttpMethod, LogLevel, Severity};

/// One action statement.
#[derive(Debug)]
pub struct ActionDef {
    pub name: &'static str,
    pub params: &'static [Param],
    /// One line for the docs table.
    pub doc: &'static str,
}

pub static NOTIFY: ActionDef = ActionDef {
    name: "notify",
    params: &[
        Param::req("to", "recipient rows or keys, a list of them, or an optional"),
        Param::req("body", "string"),
        Param::choice("severity", Severity::Notice.as_str(), &Severity::NAMES),
    ],
    doc: "one notification row per distinct recipient in `herald_notification`; absent means nobody",
};

pub static SEND_EMAIL: ActionDef = ActionDef {
    name: "send_email",
    params: &[
        Param::req("to", "string or [string]"),
        Param::req("subject", "string (one line)"),
        Param::req("body", "string"),
        Param::opt("cc", "string or [string]"),
        Param::opt("bcc", "string or [string]"),
    ],
    doc: "queues a message in `herald_outbox`, sent after the event commits; a bad address or a subject with a line break is a rule error",
};

pub static LOG: ActionDef = ActionDef {
    name: "log",
    params: &[Param::req("message", "string"), Param::choice("level", LogLevel::Info.as_str(), &LogLevel::NAMES)],
    doc: "a JSON line on stderr after the event commits",
};

pub static WEBHOOK: ActionDef = ActionDef {
    name: "webhook",
    params: &[
        Param::req("url", "string (`http` or `https`)"),
        Param::req("body", "any value: a string is sent as it is, anything else as JSON"),
        Param::opt("headers", "a record of strings"),
        Param::choice("method", HttpMethod::Post.as_str(), &HttpMethod::NAMES),
    ],
    doc: "queues an HTTP request in `herald_outbox`, delivered after the event commits with an `Idempotency-Key`; a non-http(s) URL or a header with a line break is a rule error",
};

/// Every action, in the order the docs list them.
pub static ACTIONS: [&ActionDef; 4] = [&NOTIFY, &SEND_EMAIL, &LOG, &WEBHOOK];

/// The action called `name`.
pub fn action(name: &str) -> Option<&'static ActionDef> {
    ACTIONS.iter().copied().find(|a| a.name == name)
}

/// The names of every action.
pub fn action_names() -> impl Iterator<Item = &'static str> + Clone {
    ACTIONS.iter().map(|a| a.name)
}

impl ActionDef {
    /// The parameter called `name` (a registry bug when missing).
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }
}
