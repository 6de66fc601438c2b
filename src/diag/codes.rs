//! The registry of stable diagnostic codes.
//!
//! Codes are grouped by stage: `E00xx` syntax, `E01xx` names and schemas,
//! `E02xx` types, `E03xx` clause rules and purity, `E04xx` statements and
//! actions, `E05xx` literal checks, `W0xxx` warnings, `R0xxx` run-time errors
//! recorded in the store. A code is never reused or renumbered. Every code
//! has a page `docs/errors/CODE.md` and at least one fixture under
//! `tests/fixtures/`; `tests/registry.rs` checks both.

use super::Severity;

macro_rules! codes {
    ($( $variant:ident = $code:literal, $sev:ident, $title:literal; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant),* }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable code, e.g. `E0109`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            /// A one-line title for the docs index.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title),* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev),* }
            }

            /// Look a code up by its text, case-insensitively.
            pub fn parse(s: &str) -> Option<Code> {
                let s = s.trim().to_ascii_uppercase();
                Code::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

codes! {
    // --- E00xx: syntax --------------------------------------------------
    UnexpectedToken = "E0001", Error, "unexpected input";
    UnterminatedString = "E0002", Error, "a string is never closed";
    UnclosedDelimiter = "E0003", Error, "a bracket or brace is never closed";
    UnmatchedDelimiter = "E0004", Error, "a closing bracket without an opening one";
    InvalidEscape = "E0005", Error, "invalid escape sequence in a string";
    InvalidNumber = "E0006", Error, "number literal out of range";
    KeywordAsName = "E0007", Error, "a keyword used as a name";
    EmptyInterpolation = "E0008", Error, "empty `{}` in a string";
    ExpectedExpression = "E0009", Error, "an expression is missing";
    ExpectedItem = "E0010", Error, "expected `rule`, `const` or a schema item";
    UnknownDurationUnit = "E0011", Error, "unknown duration unit";
    DurationOutOfRange = "E0012", Error, "duration literal out of range";
    MalformedDuration = "E0013", Error, "malformed duration literal";

    // --- E01xx: names and schemas ----------------------------------------
    UnknownType = "E0101", Error, "unknown type name";
    DuplicateField = "E0102", Error, "a field is declared twice";
    DuplicateEvent = "E0103", Error, "an event type is declared twice";
    DuplicateTypeName = "E0104", Error, "a type or entity name is declared twice";
    InvalidKeyType = "E0105", Error, "an entity key must be `int`, `string` or `uuid`";
    UnknownRecipient = "E0106", Error, "`recipient` names no entity";
    DuplicateSchemaItem = "E0107", Error, "`discriminator`, `identity`, `recipient` or `time` declared twice";
    UnknownEventType = "E0108", Error, "unknown event type";
    UnknownField = "E0109", Error, "unknown field";
    UnknownName = "E0110", Error, "unknown name";
    UnknownEntity = "E0111", Error, "unknown entity";
    UnknownFunction = "E0112", Error, "unknown function";
    DuplicateRule = "E0113", Error, "two rules have the same name";
    DuplicateConst = "E0114", Error, "two consts have the same name";
    DuplicateBinding = "E0115", Error, "a name is bound twice in one rule";
    UnknownStatement = "E0116", Error, "unknown action statement";
    InvalidIdentity = "E0117", Error, "`identity` or `discriminator` does not name a usable field";
    InvalidEntityField = "E0118", Error, "a field type an entity cannot store";
    RecursiveType = "E0119", Error, "a record type contains itself";
    MissingDiscriminator = "E0120", Error, "the schema has event types but no `discriminator`";
    EntityInEvent = "E0121", Error, "an entity type used as an event field";
    InvalidTimeField = "E0122", Error, "`time` does not name a required `timestamp` field of every event";
    ObjectKeyInterpolated = "E0123", Error, "an object literal key that interpolates";
    DuplicateObjectKey = "E0124", Error, "an object literal has the same key twice";

    // --- E02xx: types -----------------------------------------------------
    TypeMismatch = "E0201", Error, "mismatched types";
    OptionalValue = "E0202", Error, "an optional value used where a value is required";
    IncomparableTypes = "E0203", Error, "values of these types cannot be compared";
    BadArithmetic = "E0204", Error, "arithmetic on values that are not numbers";
    NotBoolean = "E0205", Error, "`and`, `or` and `not` take booleans";
    BadIn = "E0206", Error, "`in` needs a list or a string on its right";
    NoFields = "E0207", Error, "field access on a value that has no fields";
    BadIndex = "E0208", Error, "indexing a value that is not a list";
    ConditionNotBool = "E0209", Error, "a condition is not a boolean";
    MixedList = "E0210", Error, "list elements of different types";
    NotOrderable = "E0211", Error, "ordering comparison on values without an order";
    BadLookupKey = "E0212", Error, "an entity lookup key of the wrong type";
    BadTimeArithmetic = "E0213", Error, "an operator a timestamp or duration does not take";
    DurationNumber = "E0214", Error, "a duration compared with a number";
    CoalesceMismatch = "E0215", Error, "the two sides of `??` have incompatible types";

    // --- E03xx: clause rules and purity ------------------------------------
    QueryInMatch = "E0301", Error, "a store query in a `match` clause";
    NowInMatch = "E0302", Error, "`now()` in a `match` clause";
    ActionInExpression = "E0303", Error, "an action used as an expression";
    ClauseOrder = "E0304", Error, "clauses out of order";
    MissingMatch = "E0305", Error, "a rule without a `match` clause";
    DuplicateMatch = "E0306", Error, "a rule with two `match` clauses";
    PatternOnAny = "E0307", Error, "field patterns on `match any`";
    ConstNotLiteral = "E0308", Error, "a const value that is not a literal";
    UnsupportedFilter = "E0309", Error, "a query filter that cannot run in the store";

    // --- E07xx: `test` items (`herald test`) -------------------------------
    TestUnknownRule = "E0701", Error, "an `expect` names no rule";
    TestNotLiteral = "E0702", Error, "a test's row, event or expected argument is not a literal";
    TestNotRuntimeCode = "E0703", Error, "`expect rule_error` with a code that is not a run-time code";
    // --- E04xx: statements and actions -------------------------------------
    EventReadOnly = "E0401", Error, "events are read-only";
    NotAnEntityBinding = "E0402", Error, "the target of `set`, `append` or `remove` is not an entity";
    SetTypeMismatch = "E0403", Error, "`set` of a value of the wrong type";
    AppendNotList = "E0404", Error, "`append` to a field that is not a list";
    RemoveRequired = "E0405", Error, "`remove` of a required field";
    ForNotList = "E0406", Error, "`for` over a value that is not a list";
    UnknownArgument = "E0407", Error, "unknown argument name";
    MissingArgument = "E0408", Error, "a required argument is missing";
    DuplicateArgument = "E0409", Error, "an argument is given twice";
    ArgumentType = "E0410", Error, "an argument of the wrong type";
    InvalidSeverity = "E0411", Error, "invalid `severity`";
    InvalidLevel = "E0412", Error, "invalid log `level`";
    NoRecipientEntity = "E0413", Error, "`notify` in a schema without `recipient`";
    BadRecipients = "E0414", Error, "`notify` recipients of the wrong type";
    TooManyArguments = "E0415", Error, "too many arguments";
    PositionalAfterNamed = "E0416", Error, "a positional argument after a named one";
    SetKey = "E0417", Error, "assignment to an entity's key";
    SetManyToMany = "E0418", Error, "`set` or `remove` on a many-to-many field";
    InvalidMethod = "E0419", Error, "invalid webhook `method`";
    // E0430-E0439: `upsert`, `delete`, `add`, `remove … from` (language v1).
    LinkNotManyToMany = "E0430", Error, "`add` or `remove … from` on a field that is not many-to-many";
    BadLinkElement = "E0431", Error, "`add` or `remove … from` with a value of the wrong entity or key type";
    BadRowKey = "E0432", Error, "`upsert` or `delete` with a key of the wrong type";
    UpsertKeyField = "E0433", Error, "the key given again among an `upsert`'s fields";
    UpsertDuplicateField = "E0434", Error, "a field given twice in an `upsert`";
    WriteAfterDelete = "E0435", Error, "a write through a binding whose row was deleted";

    // --- E05xx: literal checks ---------------------------------------------
    InvalidRegex = "E0501", Error, "invalid regular expression";
    InvalidCidr = "E0502", Error, "invalid CIDR range";
    NotALiteral = "E0503", Error, "an argument that must be a literal";
    InvalidUuid = "E0504", Error, "invalid UUID literal";
    InvalidTimestamp = "E0505", Error, "invalid timestamp literal";

    // --- E06xx: stateful clauses (windows, throttles) --------------------
    NoEventTime = "E0601", Error, "a stateful clause in a schema without `time`";
    DistinctNotComparable = "E0603", Error, "a `by` key or `distinct` value that is not a scalar";
    ZeroDuration = "E0604", Error, "a window or throttle of zero length";
    StateNameUnbound = "E0605", Error, "`window.*` or `throttle.*` where no clause binds it";
    AfterNameClash = "E0606", Error, "an `after ... as NAME` whose name is already bound";

    // --- W0xxx: warnings ----------------------------------------------------
    FilterShadows = "W0001", Warning, "a query filter field shadows an outer name";
    UnusedBinding = "W0002", Warning, "a binding is never used";
    GuardLetNotOptional = "W0003", Warning, "`guard let` on a value that is never absent";
    NullCompareNeverAbsent = "W0004", Warning, "comparison with `null` of a value that is never absent";
    DuplicateMatchType = "W0005", Warning, "an event type listed twice in `match`";
    CoalesceNeverAbsent = "W0006", Warning, "`??` after a value that is never absent";
    UpsertMissingRequired = "W0010", Warning, "an `upsert` that leaves out a required field";

    // --- R0xxx: run-time errors recorded in `herald_rule_error` -------------
    DynamicType = "R0001", Error, "a dynamic (`any`) value of the wrong type";
    RequiredAbsent = "R0002", Error, "an absent value for a required field";
    InvalidAddress = "R0003", Error, "an invalid email address";
    HeaderInjection = "R0004", Error, "a line break in an email or webhook header";
    StoreFailure = "R0005", Error, "the store rejected a write";
    SchemaContradiction = "R0006", Error, "an event value that contradicts the schema";
    TimeOutOfRange = "R0007", Error, "a timestamp or duration result out of range";
    InvalidWebhook = "R0008", Error, "an invalid webhook URL or header name";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert_eq!(s.len(), 5, "{s}");
            let prefix = &s[..1];
            assert!(matches!(prefix, "E" | "W" | "R"), "{s}");
            assert_eq!(prefix == "W", c.severity() == Severity::Warning, "{s}");
            assert_eq!(Code::parse(&s.to_lowercase()), Some(*c));
        }
    }
}
