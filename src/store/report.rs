//! What `herald demo` shows after its run, read back from the store. The
//! queries live here so that only `store` issues SQL; `cli` formats.

use super::Store;
use rusqlite::types::ValueRef;

/// The demo's view of the store: each row as display strings (`-` for NULL).
#[derive(Debug, Default)]
pub struct DemoReport {
    /// severity, recipient's username, body, rule
    pub notifications: Vec<[String; 4]>,
    /// status, recipients (JSON), subject, rule
    pub emails: Vec<[String; 4]>,
    /// username, attributes of users whose SSH keys were archived
    pub user_attributes: Vec<[String; 2]>,
    /// name, attributes of groups with an addition history
    pub group_attributes: Vec<[String; 2]>,
    /// rule, code, message
    pub rule_errors: Vec<[String; 3]>,
}

impl Store {
    pub fn demo_report(&self) -> DemoReport {
        DemoReport {
            notifications: self.text_rows(
                "SELECT n.severity, u.username, n.body, n.rule FROM herald_notification n \
                 LEFT JOIN \"User\" u ON u.pk = n.user_pk ORDER BY n.id",
            ),
            emails: self.text_rows(
                "SELECT status, to_addrs, subject, rule FROM herald_outbox WHERE kind = 'email' ORDER BY id",
            ),
            user_attributes: self.text_rows(
                "SELECT username, attributes FROM \"User\" WHERE attributes LIKE '%inactiveSSHPublicKey%' ORDER BY pk",
            ),
            group_attributes: self.text_rows(
                "SELECT name, attributes FROM \"Group\" WHERE attributes LIKE '%UserAddedHistory%' ORDER BY name",
            ),
            rule_errors: self.text_rows("SELECT rule, code, message FROM herald_rule_error ORDER BY id"),
        }
    }

    /// Every row of a fixed query as `N` display strings. A query that fails
    /// (a custom schema without `User`, say) yields no rows: the report is
    /// informational and must not fail the demo.
    fn text_rows<const N: usize>(&self, sql: &str) -> Vec<[String; N]> {
        let Ok(mut st) = self.connection().prepare(sql) else { return vec![] };
        st.query_map([], |r| {
            Ok(std::array::from_fn(|i| match r.get_ref(i) {
                Ok(ValueRef::Null) => "-".to_string(),
                Ok(ValueRef::Integer(x)) => x.to_string(),
                Ok(ValueRef::Real(x)) => x.to_string(),
                Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
                _ => "?".to_string(),
            }))
        })
        .map(|it| it.flatten().collect())
        .unwrap_or_default()
    }
}
