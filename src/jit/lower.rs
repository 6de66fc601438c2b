//! From a rule's typed `match` condition to the small condition language the
//! code generator understands: atoms over one event path and a literal,
//! combined with `not`/`and`/`or`. Anything else makes the rule run
//! interpreted, with the reason returned here.

use crate::builtins::{self, Jit};
use crate::interp::ops;
use crate::ir::{Builtin, Cidr, CmpOp, Expr, ExprKind, LocalId, PathId, Rule};
use crate::value::Value;
use std::sync::Arc;

/// A literal an atom compares against. Floats by their bits so atoms can be
/// hashed for common-subexpression elimination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Uuid(u128),
    Timestamp(i128),
}

/// One test of one event path: the unit the code generator evaluates once
/// per event, however many rules share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Atom {
    /// `path == null` (`negated`: `!= null`); also pattern bindings and `_`.
    IsNull { path: PathId, negated: bool },
    /// The path's value used directly as a condition (a bool field).
    Truthy(PathId),
    /// `path op literal` (a literal on the left is swapped to the right).
    Cmp { path: PathId, op: CmpOp, lit: Lit },
    /// `path in [literals]`.
    In { path: PathId, items: Vec<Lit> },
    /// A predicate on one path's value run by a Rust helper
    /// (`helpers::herald_jit_pred`), which may also answer "ask".
    Call { path: PathId, pred: Pred },
    /// Time arithmetic on a `timestamp` path compared with a literal,
    /// solved for the path's value: `event.t + 1h > L` is `t > L - 1h` and
    /// `event.t - L <= 5m` is `t <= L + 5m`. The interpreter's intermediate
    /// results must stay in range (else it reports R0007): that is `t` in
    /// `lo..=hi`, outside which the atom answers "ask".
    Time { path: PathId, op: CmpOp, rhs: i128, lo: i128, hi: i128 },
}

/// A predicate over one event value with constant arguments, evaluated by
/// `helpers::eval` with the interpreter's semantics.
#[derive(Debug, Clone)]
pub(crate) enum Pred {
    /// `starts_with(path, "lit")`.
    StartsWith(String),
    /// `ends_with(path, "lit")`.
    EndsWith(String),
    /// `contains(path, "lit")` and `"lit" in path`: the same on a string
    /// (the slot kinds where they differ are left to the interpreter).
    Contains(String),
    /// `path in "lit"`: the value is a substring of the literal.
    SubstrOf(String),
    /// `matches(path, "re")`.
    Matches(Arc<regex::Regex>),
    /// `ip_in(path, "cidr")`.
    IpIn(Cidr),
    /// `empty(path)`.
    Empty,
    /// `len(path) op literal` (an int or float literal).
    Len(CmpOp, Lit),
    /// `lower(path) == "lit"` (`negated`: `!=`).
    LowerEq(String, bool),
    /// `upper(path) == "lit"` (`negated`: `!=`).
    UpperEq(String, bool),
}

/// Kind, string argument, CIDR, `len` comparison, negation.
type PredKey<'a> = (u8, Option<&'a str>, Option<Cidr>, Option<(CmpOp, &'a Lit)>, bool);

impl Pred {
    /// A hashable identity for common-subexpression elimination (a regex
    /// by its source text).
    fn key(&self) -> PredKey<'_> {
        match self {
            Pred::StartsWith(s) => (0, Some(s), None, None, false),
            Pred::EndsWith(s) => (1, Some(s), None, None, false),
            Pred::Contains(s) => (2, Some(s), None, None, false),
            Pred::SubstrOf(s) => (3, Some(s), None, None, false),
            Pred::Matches(r) => (4, Some(r.as_str()), None, None, false),
            Pred::IpIn(c) => (5, None, Some(*c), None, false),
            Pred::Empty => (6, None, None, None, false),
            Pred::Len(op, l) => (7, None, None, Some((*op, l)), false),
            Pred::LowerEq(s, n) => (8, Some(s), None, None, *n),
            Pred::UpperEq(s, n) => (9, Some(s), None, None, *n),
        }
    }
}

impl PartialEq for Pred {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Pred {}

impl std::hash::Hash for Pred {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.key().hash(h)
    }
}

impl Atom {
    pub(crate) fn path(&self) -> PathId {
        match self {
            Atom::IsNull { path, .. }
            | Atom::Cmp { path, .. }
            | Atom::In { path, .. }
            | Atom::Call { path, .. }
            | Atom::Time { path, .. } => *path,
            Atom::Truthy(p) => *p,
        }
    }
}

/// A rule's condition over atoms; `and`/`or` keep the interpreter's
/// left-to-right short-circuit order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Const(bool),
    Atom(Atom),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

impl Cond {
    pub(crate) fn atoms<'a>(&'a self, out: &mut Vec<&'a Atom>) {
        match self {
            Cond::Const(_) => {}
            Cond::Atom(a) => out.push(a),
            Cond::Not(c) => c.atoms(out),
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.atoms(out);
                b.atoms(out);
            }
        }
    }
}

/// Paths this rule reads with a statically known scalar type (`string`,
/// `int`, `float`, `bool`, `uuid`, `timestamp`, optional or not): for every
/// event type the rule sees, the decoder gives such a path's slot that kind,
/// absent or null, never an array, object or another kind.
/// The value says whether the type is `string`.
pub(crate) fn scalar_paths(rule: &Rule) -> Scalars {
    let mut out = Scalars::new();
    rule.matcher.cond.walk(&mut |e| {
        if let ExprKind::Event(p) = e.kind {
            if is_scalar(&e.ty) {
                out.insert(p, matches!(e.ty.unwrap_optional(), crate::types::Ty::String));
            }
        }
    });
    out
}

pub(crate) type Scalars = std::collections::HashMap<PathId, bool>;

fn is_scalar(t: &crate::types::Ty) -> bool {
    use crate::types::Ty;
    match t.unwrap_optional() {
        Ty::Bool | Ty::Int | Ty::Float | Ty::String | Ty::Timestamp | Ty::Uuid => true,
        Ty::Duration
        | Ty::Error
        | Ty::Never
        | Ty::Null
        | Ty::Any
        | Ty::Optional(_)
        | Ty::List(_)
        | Ty::Record(_)
        | Ty::Entity(_) => false,
    }
}

/// The conjuncts of a condition, left to right (`and` is associative under
/// the three-valued short-circuit rules: the first non-true conjunct decides).
pub(crate) fn conjuncts(c: &Cond) -> Vec<&Cond> {
    match c {
        Cond::And(a, b) => {
            let mut v = conjuncts(a);
            v.extend(conjuncts(b));
            v
        }
        Cond::Const(_) | Cond::Atom(_) | Cond::Not(_) | Cond::Or(..) => vec![c],
    }
}

/// The conjuncts the code generator may dispatch on: each
/// `path == "literal"` on a `string` path that is preceded only by
/// conjuncts that never need the interpreter on well-typed values. When the
/// path's interned id differs from the literal's, the rule's result is then
/// known to be false — unless a slot read before the key contradicts the
/// schema: that conjunct asks the interpreter (which reports R0006 first),
/// so the second list holds the paths read before the last key, for the
/// code generator to check for contradictions before it trusts the switch.
pub(crate) fn dispatch_keys(c: &Cond, scalar: &Scalars) -> (Vec<(PathId, String)>, Vec<PathId>) {
    let mut out = Vec::new();
    let mut before = Vec::new();
    let mut guard = Vec::new();
    for k in conjuncts(c) {
        let a = match k {
            Cond::Const(_) => continue,
            Cond::Atom(a) => a,
            Cond::Not(_) | Cond::And(..) | Cond::Or(..) => break,
        };
        match a {
            Atom::IsNull { .. } => {}
            // Only a `string` path: its slot is STR (with the interned id),
            // absent or null, so "id differs" means "not equal".
            Atom::Cmp { path, op: CmpOp::Eq, lit: Lit::Str(s) } if scalar.get(path) == Some(&true) => {
                out.push((*path, s.clone()));
                guard.clone_from(&before);
            }
            Atom::Cmp {
                path,
                op: CmpOp::Eq | CmpOp::Ne,
                lit: Lit::Str(_) | Lit::Int(_) | Lit::Float(_) | Lit::Bool(_),
            } if scalar.contains_key(path) => {}
            Atom::Cmp { .. } | Atom::Truthy(_) | Atom::In { .. } | Atom::Call { .. } | Atom::Time { .. } => break,
        }
        before.push(a.path());
    }
    guard.sort();
    guard.dedup();
    (out, guard)
}

/// An operand of a comparison: an event path or a literal.
enum Operand {
    Path(PathId),
    Lit(Value),
}

/// A `timestamp` path with time arithmetic applied: the value is
/// `sign * t + off` (a timestamp, or a duration when `dur`; `sign` is 1 or
/// -1), defined when the path's `t` is in `lo..=hi` (every intermediate
/// result in range).
#[derive(Debug, Clone, Copy)]
struct Affine {
    path: PathId,
    neg: bool,
    off: i128,
    lo: i128,
    hi: i128,
    dur: bool,
}

impl Affine {
    /// Narrow the domain so that the value stays within `min..=max`.
    fn within(mut self, min: i128, max: i128) -> Option<Affine> {
        let (a, b) = (min.checked_sub(self.off)?, max.checked_sub(self.off)?);
        // `-t` in `a..=b` is `t` in `-b..=-a`.
        let (a, b) = if self.neg { (b.checked_neg()?, a.checked_neg()?) } else { (a, b) };
        self.lo = self.lo.max(a);
        self.hi = self.hi.min(b);
        Some(self)
    }

    /// The domain narrowed to the range of the value's kind.
    fn bounded(self) -> Option<Affine> {
        if self.dur {
            self.within(i64::MIN as i128, i64::MAX as i128)
        } else {
            self.within(crate::value::MIN_TIMESTAMP, crate::value::MAX_TIMESTAMP)
        }
    }

    /// `self + k` for a literal `k` (a duration, or a timestamp subtracted).
    fn plus(mut self, k: i128, dur: bool) -> Option<Affine> {
        self.off = self.off.checked_add(k)?;
        self.dur = dur;
        self.bounded()
    }

    /// `k - self` for a literal `k`.
    fn from(mut self, k: i128, dur: bool) -> Option<Affine> {
        self.neg = !self.neg;
        self.off = k.checked_sub(self.off)?;
        self.dur = dur;
        self.bounded()
    }
}

/// Lower a rule's `match` condition, or say why it is not compiled.
pub(crate) fn lower_rule(rule: &Rule) -> Result<Cond, String> {
    let l = Lowerer { bindings: &rule.matcher.bindings };
    l.cond(&rule.matcher.cond)
}

struct Lowerer<'a> {
    bindings: &'a [(LocalId, PathId)],
}

fn swap(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Eq => CmpOp::Eq,
        CmpOp::Ne => CmpOp::Ne,
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
    }
}

/// A scalar literal the native code can compare with; `Err` names the kind
/// it cannot.
fn lit(v: &Value) -> Result<Lit, String> {
    match v {
        Value::Absent | Value::Null => Ok(Lit::Null),
        Value::Bool(b) => Ok(Lit::Bool(*b)),
        Value::Int(i) => Ok(Lit::Int(*i)),
        Value::Float(f) => Ok(Lit::Float(f.to_bits())),
        Value::Str(s) => Ok(Lit::Str(s.to_string())),
        Value::Uuid(u) => Ok(Lit::Uuid(*u)),
        Value::Timestamp(t) => Ok(Lit::Timestamp(*t)),
        // No event slot holds a duration; only an `any` path could be
        // compared with one, which is never equal: left to the interpreter.
        Value::Duration(_) => Err("compares with a duration".into()),
        Value::List(_) => Err("compares with a list literal".into()),
        Value::Object(_) => Err("compares with an object literal".into()),
        Value::Entity(_) => Err("compares with an entity row".into()),
    }
}

impl Lowerer<'_> {
    fn operand(&self, e: &Expr) -> Result<Operand, String> {
        match &e.kind {
            ExprKind::Event(p) => Ok(Operand::Path(*p)),
            ExprKind::Local(l) => match self.bindings.iter().find(|(b, _)| b == l) {
                Some((_, p)) => Ok(Operand::Path(*p)),
                None => Err("reads a local that is not a pattern binding".into()),
            },
            ExprKind::Lit(v) => Ok(Operand::Lit(v.clone())),
            ExprKind::List(items) => {
                let mut vals = Vec::with_capacity(items.len());
                for i in items {
                    match &i.kind {
                        ExprKind::Lit(v) => vals.push(v.clone()),
                        _ => return Err("builds a list from non-literal elements".into()),
                    }
                }
                Ok(Operand::Lit(Value::list(vals)))
            }
            _ => Err(format!("uses {}", describe(e))),
        }
    }

    fn cond(&self, e: &Expr) -> Result<Cond, String> {
        match &e.kind {
            ExprKind::Lit(Value::Bool(b)) => Ok(Cond::Const(*b)),
            ExprKind::Lit(_) => Err("has a non-bool literal as a condition".into()),
            ExprKind::Event(p) => Ok(Cond::Atom(Atom::Truthy(*p))),
            ExprKind::Local(_) => match self.operand(e)? {
                Operand::Path(p) => Ok(Cond::Atom(Atom::Truthy(p))),
                Operand::Lit(_) => Err("reads a local that is not a pattern binding".into()),
            },
            ExprKind::Not(x) => Ok(Cond::Not(Box::new(self.cond(x)?))),
            ExprKind::And(a, b) => Ok(Cond::And(Box::new(self.cond(a)?), Box::new(self.cond(b)?))),
            ExprKind::Or(a, b) => Ok(Cond::Or(Box::new(self.cond(a)?), Box::new(self.cond(b)?))),
            ExprKind::Cmp { op, lhs, rhs } if matches!(lhs.kind, ExprKind::Call { .. }) => self.call_cmp(*op, lhs, rhs),
            ExprKind::Cmp { op, lhs, rhs } if matches!(rhs.kind, ExprKind::Call { .. }) => {
                self.call_cmp(swap(*op), rhs, lhs)
            }
            ExprKind::Call { func, args } => self.call(func, args),
            ExprKind::Cmp { op, lhs, rhs }
                if matches!(lhs.kind, ExprKind::Arith { .. } | ExprKind::Neg(_))
                    || matches!(rhs.kind, ExprKind::Arith { .. } | ExprKind::Neg(_)) =>
            {
                self.time_cmp(*op, lhs, rhs)
            }
            ExprKind::Cmp { op, lhs, rhs } => match (self.operand(lhs)?, self.operand(rhs)?) {
                (Operand::Path(p), Operand::Lit(v)) => Ok(cmp_atom(p, *op, &v)?),
                (Operand::Lit(v), Operand::Path(p)) => Ok(cmp_atom(p, swap(*op), &v)?),
                // Constant folding with the interpreter's own semantics.
                (Operand::Lit(a), Operand::Lit(b)) => Ok(Cond::Const(ops::compare(*op, &a, &b))),
                (Operand::Path(_), Operand::Path(_)) => Err("compares two event values".into()),
            },
            ExprKind::IsNull { operand, negated } => match self.operand(operand)? {
                Operand::Path(path) => Ok(Cond::Atom(Atom::IsNull { path, negated: *negated })),
                Operand::Lit(v) => Ok(Cond::Const(v.is_nullish() != *negated)),
            },
            ExprKind::In { elem, container } => match (self.operand(elem)?, self.operand(container)?) {
                (Operand::Path(path), Operand::Lit(Value::List(items))) => {
                    let mut lits = Vec::with_capacity(items.len());
                    for i in items.iter() {
                        match lit(i)? {
                            // `null in` a list is never true: drop the item.
                            Lit::Null => {}
                            l => lits.push(l),
                        }
                    }
                    Ok(Cond::Atom(Atom::In { path, items: lits }))
                }
                (Operand::Path(path), Operand::Lit(Value::Str(s))) => {
                    Ok(Cond::Atom(Atom::Call { path, pred: Pred::SubstrOf(s.to_string()) }))
                }
                // Membership in a list value: the slot is an array, which
                // only the interpreter reads.
                (_, Operand::Path(_)) if is_list(&container.ty) => Err("uses `in` over an event value".into()),
                (Operand::Lit(Value::Str(s)), Operand::Path(path)) => {
                    Ok(Cond::Atom(Atom::Call { path, pred: Pred::Contains(s.to_string()) }))
                }
                (Operand::Path(_), Operand::Lit(_)) => Err("uses `in` on a non-list, non-string literal".into()),
                (Operand::Lit(x), Operand::Lit(c)) => Ok(Cond::Const(ops::contains(&c, &x))),
                (_, Operand::Path(_)) => Err("uses `in` over an event value".into()),
            },
            ExprKind::Field { .. }
            | ExprKind::Column { .. }
            | ExprKind::Related { .. }
            | ExprKind::Index { .. }
            | ExprKind::List(_)
            | ExprKind::Interp(_)
            | ExprKind::Neg(_)
            | ExprKind::Arith { .. }
            | ExprKind::Lookup { .. }
            | ExprKind::LookupMany { .. }
            | ExprKind::Query { .. }
            | ExprKind::Row { .. } => Err(format!("uses {}", describe(e))),
        }
    }
}

impl Lowerer<'_> {
    /// A comparison where one side does time arithmetic on one `timestamp`
    /// path and the other is a literal (or folds to one).
    fn time_cmp(&self, op: CmpOp, lhs: &Expr, rhs: &Expr) -> Result<Cond, String> {
        let (a, b) = (self.affine(lhs)?, self.affine(rhs)?);
        let (aff, op, lit) = match (a, b) {
            (Ok(x), Err(v)) => (x, op, v),
            (Err(v), Ok(x)) => (x, swap(op), v),
            (Err(x), Err(y)) => return Ok(Cond::Const(ops::compare(op, &x, &y))),
            (Ok(_), Ok(_)) => return Err("compares two event values".into()),
        };
        let rhs = match (&lit, aff.dur) {
            // Comparisons with null are false, `!=` their negation.
            (Value::Absent | Value::Null, _) => return Ok(Cond::Const(op == CmpOp::Ne)),
            (Value::Timestamp(t), false) => *t,
            (Value::Duration(d), true) => *d as i128,
            _ => return Err("compares time arithmetic with a literal of another kind".into()),
        };
        let Some(rhs) = rhs.checked_sub(aff.off) else {
            return Err("uses time arithmetic out of range".into());
        };
        // `-t op c` is `t (swapped op) -c`.
        let (op, rhs) = if aff.neg { (swap(op), -rhs) } else { (op, rhs) };
        // An empty `lo..=hi` (no `t` gives a value) is still compiled: the
        // atom asks on every timestamp, and the interpreter reports R0007.
        Ok(Cond::Atom(Atom::Time { path: aff.path, op, rhs, lo: aff.lo, hi: aff.hi }))
    }

    /// An operand of a time comparison: `Ok(Ok(affine))` for arithmetic on
    /// a path, `Ok(Err(value))` for a literal (folded with the
    /// interpreter's own arithmetic).
    fn affine(&self, e: &Expr) -> Result<Result<Affine, Value>, String> {
        use crate::ir::ArithOp;
        use crate::types::Ty;
        match &e.kind {
            ExprKind::Arith { op, lhs, rhs } => {
                let (l, r) = (self.affine(lhs)?, self.affine(rhs)?);
                let too_far = || "uses time arithmetic out of range".to_string();
                let done = |a: Option<Affine>| a.map(Ok).ok_or_else(too_far);
                match (op, l, r) {
                    (_, Err(x), Err(y)) => match ops::arith(*op, &x, &y) {
                        Ok(v) => Ok(Err(v)),
                        Err(_) => Err("uses arithmetic that fails on its literals".into()),
                    },
                    (ArithOp::Add, Ok(a), Err(Value::Duration(d))) | (ArithOp::Add, Err(Value::Duration(d)), Ok(a)) => {
                        done(a.plus(d as i128, a.dur))
                    }
                    (ArithOp::Sub, Ok(a), Err(Value::Duration(d))) => done(a.plus(-(d as i128), a.dur)),
                    // `t - L`: a duration.
                    (ArithOp::Sub, Ok(a), Err(Value::Timestamp(t))) if !a.dur => done(a.plus(-t, true)),
                    // `L - t` is a duration, `L - d` a timestamp, `d - d'` a duration.
                    (ArithOp::Sub, Err(Value::Timestamp(t)), Ok(a)) => done(a.from(t, !a.dur)),
                    (ArithOp::Sub, Err(Value::Duration(d)), Ok(a)) if a.dur => done(a.from(d as i128, true)),
                    _ => Err("uses arithmetic the JIT does not compile".into()),
                }
            }
            ExprKind::Neg(x) => match self.affine(x)? {
                Err(v) => ops::negate(&v).map(Err).map_err(|_| "negates a literal out of range".to_string()),
                // `-d` fails only for the most negative duration.
                Ok(a) if a.dur => a
                    .from(0, true)
                    .and_then(|a| a.within(-(i64::MAX as i128), i64::MAX as i128))
                    .map(Ok)
                    .ok_or_else(|| "uses time arithmetic out of range".to_string()),
                Ok(_) => Err("negates a timestamp".into()),
            },
            ExprKind::Lit(v) => Ok(Err(v.clone())),
            ExprKind::Event(_) | ExprKind::Local(_) if e.ty.unwrap_optional() == &Ty::Timestamp => {
                match self.operand(e)? {
                    Operand::Path(path) => Ok(Ok(Affine {
                        path,
                        neg: false,
                        off: 0,
                        lo: crate::value::MIN_TIMESTAMP,
                        hi: crate::value::MAX_TIMESTAMP,
                        dur: false,
                    })),
                    Operand::Lit(v) => Ok(Err(v)),
                }
            }
            // Number arithmetic on an event value (`event.n + 1 == 2`).
            ExprKind::Event(_) | ExprKind::Local(_) => Err("uses arithmetic on a value that is not a timestamp".into()),
            _ => Err(format!("uses {}", describe(e))),
        }
    }

    /// The one event path a function reads, or why not.
    fn path_arg(&self, func: &Builtin, e: &Expr) -> Result<PathId, String> {
        match self.operand(e) {
            Ok(Operand::Path(p)) => Ok(p),
            Ok(Operand::Lit(_)) | Err(_) => {
                Err(format!("uses `{}(...)` on something other than an event value", func.name()))
            }
        }
    }

    /// The string literal argument of a function, or why not.
    fn str_arg(&self, func: &Builtin, e: &Expr) -> Result<String, String> {
        match &e.kind {
            ExprKind::Lit(Value::Str(s)) => Ok(s.to_string()),
            _ => Err(format!("uses `{}(...)` with a non-literal argument", func.name())),
        }
    }

    /// A boolean function call used as a condition.
    fn call(&self, func: &Builtin, args: &[Expr]) -> Result<Cond, String> {
        // Whether a function compiles at all is its registry entry's data;
        // how it compiles is below.
        if builtins::def(func).jit != Jit::Predicate {
            return Err(format!("uses `{}(...)`", func.name()));
        }
        let pred = match (func, args) {
            (Builtin::StartsWith, [_, b]) => Pred::StartsWith(self.str_arg(func, b)?),
            (Builtin::EndsWith, [_, b]) => Pred::EndsWith(self.str_arg(func, b)?),
            (Builtin::Contains, [a, _]) if is_list(&a.ty) => return Err("uses `contains(...)` on a list".into()),
            (Builtin::Contains, [_, b]) => Pred::Contains(self.str_arg(func, b)?),
            (Builtin::Matches(re), [_]) => Pred::Matches(re.clone()),
            (Builtin::IpIn(c), [_]) => Pred::IpIn(*c),
            (Builtin::Empty, [_]) => Pred::Empty,
            _ => return Err(format!("uses `{}(...)` in a form the JIT does not compile", func.name())),
        };
        let path = self.path_arg(func, &args[0])?;
        Ok(Cond::Atom(Atom::Call { path, pred }))
    }

    /// `call op other` (a call on the left after swapping).
    fn call_cmp(&self, op: CmpOp, call: &Expr, other: &Expr) -> Result<Cond, String> {
        let ExprKind::Call { func, args } = &call.kind else {
            return Err(format!("uses {}", describe(call)));
        };
        let [arg] = args.as_slice() else {
            return Err(format!("uses {}", describe(call)));
        };
        let lit = match &other.kind {
            ExprKind::Lit(v) => v,
            _ => return Err(format!("compares `{}(...)` with a non-literal", func.name())),
        };
        if builtins::def(func).jit != Jit::CompareWithLiteral {
            return Err(format!("uses {}", describe(call)));
        }
        let eq = matches!(op, CmpOp::Eq | CmpOp::Ne);
        let pred = match (func, lit) {
            (Builtin::Len, Value::Int(n)) => Pred::Len(op, Lit::Int(*n)),
            (Builtin::Len, Value::Float(f)) => Pred::Len(op, Lit::Float(f.to_bits())),
            (Builtin::Lower, Value::Str(s)) if eq => Pred::LowerEq(s.to_string(), op == CmpOp::Ne),
            (Builtin::Upper, Value::Str(s)) if eq => Pred::UpperEq(s.to_string(), op == CmpOp::Ne),
            _ => return Err(format!("uses {}", describe(call))),
        };
        let path = self.path_arg(func, arg)?;
        Ok(Cond::Atom(Atom::Call { path, pred }))
    }
}

fn is_list(t: &crate::types::Ty) -> bool {
    matches!(t.unwrap_optional(), crate::types::Ty::List(_))
}

fn cmp_atom(path: PathId, op: CmpOp, v: &Value) -> Result<Cond, String> {
    match lit(v)? {
        // Comparisons with null are false whatever the other side, and
        // `!=` is their negation.
        Lit::Null => Ok(Cond::Const(op == CmpOp::Ne)),
        lit => Ok(Cond::Atom(Atom::Cmp { path, op, lit })),
    }
}

/// What an expression the JIT does not compile is, for the reason text.
fn describe(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Lit(_) => "a literal in an unsupported position".into(),
        ExprKind::Event(_) => "an event value in an unsupported position".into(),
        ExprKind::Local(_) => "a local in an unsupported position".into(),
        ExprKind::Field { .. } => "a dynamic field access".into(),
        ExprKind::Column { .. } | ExprKind::Related { .. } => "an entity field".into(),
        ExprKind::Index { .. } => "indexing".into(),
        ExprKind::List(_) => "a list built at run time".into(),
        ExprKind::Interp(_) => "string interpolation".into(),
        ExprKind::Neg(_) | ExprKind::Arith { .. } => "arithmetic".into(),
        ExprKind::Not(_) | ExprKind::And(..) | ExprKind::Or(..) => "a condition as a value".into(),
        ExprKind::Cmp { .. } | ExprKind::IsNull { .. } | ExprKind::In { .. } => "a comparison as a value".into(),
        ExprKind::Call { func, .. } => format!("`{}(...)`", func.name()),
        ExprKind::Lookup { .. } | ExprKind::LookupMany { .. } | ExprKind::Query { .. } | ExprKind::Row { .. } => {
            "a store read".into()
        }
    }
}
