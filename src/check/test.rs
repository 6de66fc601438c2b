//! Checking `test` items (`herald test`): the names an `expect` uses, the
//! entities and fields of `given` rows, literal event bodies and the type
//! of `expect EXPR`. A test is checked with the rules, so a typo in one is a
//! coded diagnostic before anything runs.

use super::{CheckError, Checker, Hint, Phase, RuleCx};
use crate::builtins::actions;
use crate::diag::{suggest, Code};
use crate::ir::{self, ExpectKind, Expectation};
use crate::span::Span;
use crate::syntax::ast;
use crate::types::Ty;
use crate::value::parse_timestamp;
use serde_json::Value as J;

/// A literal written in the language as JSON; `Err` is the span of the
/// first part that is not a literal (`None` when the parser already
/// reported it).
fn json_literal(e: &ast::Expr) -> Result<J, Option<Span>> {
    Ok(match &e.kind {
        ast::ExprKind::Null => J::Null,
        ast::ExprKind::Bool(b) => J::Bool(*b),
        ast::ExprKind::Int(i) => J::from(*i),
        ast::ExprKind::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).ok_or(Some(e.span))?,
        ast::ExprKind::Error => return Err(None),
        ast::ExprKind::Str(_) => J::String(e.as_plain_str().ok_or(Some(e.span))?),
        ast::ExprKind::Unary { op: ast::UnOp::Neg, operand, .. } => match &operand.kind {
            ast::ExprKind::Int(i) => J::from(i.checked_neg().ok_or(Some(e.span))?),
            ast::ExprKind::Float(f) => serde_json::Number::from_f64(-f).map(J::Number).ok_or(Some(e.span))?,
            ast::ExprKind::Error => return Err(None),
            _ => return Err(Some(e.span)),
        },
        ast::ExprKind::List(items) => J::Array(items.iter().map(json_literal).collect::<Result<_, _>>()?),
        ast::ExprKind::Object(entries) => {
            let mut m = serde_json::Map::new();
            for en in entries {
                m.insert(en.key.clone(), json_literal(&en.value)?);
            }
            J::Object(m)
        }
        _ => return Err(Some(e.span)),
    })
}

/// The first use of `event` in a checked expression.
fn first_event(e: &ir::Expr) -> Option<Span> {
    if let ir::ExprKind::Event(_) = e.kind {
        return Some(e.span);
    }
    e.children().into_iter().find_map(first_event)
}

impl Checker<'_> {
    fn test_literal(&mut self, e: &ast::Expr, what: &'static str) -> Option<J> {
        match json_literal(e) {
            Ok(j) => Some(j),
            Err(Some(span)) => {
                self.errors.push(CheckError::TestNotLiteral { span, what });
                None
            }
            Err(None) => None,
        }
    }

    fn test_rule(&mut self, rule: &ast::Ident, rules: &[&str]) -> String {
        if !rules.contains(&rule.name.as_str()) {
            self.errors.push(CheckError::TestUnknownRule {
                span: rule.span,
                name: rule.name.clone(),
                suggestion: suggest(&rule.name, rules.iter().copied()),
            });
        }
        rule.name.clone()
    }

    pub(super) fn test(&mut self, t: &ast::TestDecl, rules: &[&str]) -> ir::Test {
        let mut test = ir::Test {
            name: t.name.clone(),
            span: t.span,
            given: Vec::new(),
            now: None,
            events: Vec::new(),
            expects: Vec::new(),
        };
        for step in &t.steps {
            match step {
                ast::TestStep::Given { entity, row, .. } => {
                    let Some(id) = self.schema.entity_by_name(&entity.name) else {
                        let names: Vec<&str> = self.schema.entities.iter().map(|e| e.name.as_str()).collect();
                        self.errors.push(CheckError::UnknownEntity {
                            span: entity.span,
                            name: entity.name.clone(),
                            suggestion: suggest(&entity.name, names.iter().copied()),
                        });
                        continue;
                    };
                    let def = self.schema.entity(id);
                    if let ast::ExprKind::Object(entries) = &row.kind {
                        for en in entries {
                            let known = def.key.name == en.key || def.fields.iter().any(|f| f.name == en.key);
                            if !known {
                                let names = std::iter::once(def.key.name.as_str())
                                    .chain(def.fields.iter().map(|f| f.name.as_str()));
                                self.errors.push(CheckError::UnknownField {
                                    span: en.key_span,
                                    field: en.key.clone(),
                                    owner: format!("entity `{}`", def.name),
                                    suggestion: suggest(&en.key, names),
                                });
                            }
                        }
                    }
                    if let Some(j) = self.test_literal(row, "a `given` row") {
                        test.given.push((entity.name.clone(), j));
                    }
                }
                ast::TestStep::Now { text, text_span, .. } => match parse_timestamp(text) {
                    Some(ns) => test.now = Some(ns),
                    None => self.errors.push(CheckError::InvalidTimestamp { span: *text_span, found: text.clone() }),
                },
                ast::TestStep::Event { body, span } => {
                    if let Some(j) = self.test_literal(body, "an `event` body") {
                        test.events.push((j, *span));
                    }
                }
                ast::TestStep::Expect { expect, span } => {
                    let kind = match expect {
                        ast::Expect::Fires { rule, count } => {
                            let rule = self.test_rule(rule, rules);
                            ExpectKind::Fires { rule, count: count.map(|(n, _)| n.max(0) as u64) }
                        }
                        ast::Expect::DoesNotFire { rule } => {
                            ExpectKind::DoesNotFire { rule: self.test_rule(rule, rules) }
                        }
                        ast::Expect::RuleError { rule, code } => {
                            let rule = self.test_rule(rule, rules);
                            if let Some((c, span)) = code {
                                // A typo (`"R001"`) would make the expectation fail forever
                                // without saying why.
                                if !Code::parse(c).is_some_and(|k| k.as_str().starts_with('R')) {
                                    self.errors.push(CheckError::TestNotRuntimeCode { span: *span, found: c.clone() });
                                }
                            }
                            ExpectKind::RuleError { rule, code: code.as_ref().map(|(c, _)| c.clone()) }
                        }
                        ast::Expect::DeadLetter => ExpectKind::DeadLetter,
                        ast::Expect::Effect { negated, action, args } => {
                            let def =
                                actions::action(&action.name).expect("the grammar admits only registered actions");
                            let mut out = Vec::new();
                            for (i, a) in args.iter().enumerate() {
                                let name = match &a.name {
                                    Some(n) if def.param(&n.name).is_some() => n.name.clone(),
                                    Some(n) => {
                                        let params: Vec<String> =
                                            def.params.iter().map(|p| p.name.to_string()).collect();
                                        self.errors.push(CheckError::UnknownArgument {
                                            span: n.span,
                                            func: action.name.clone(),
                                            name: n.name.clone(),
                                            suggestion: suggest(&n.name, def.params.iter().map(|p| p.name)),
                                            params,
                                        });
                                        continue;
                                    }
                                    None => match def.params.get(i) {
                                        Some(p) => p.name.to_string(),
                                        None => {
                                            self.errors.push(CheckError::TooManyArguments {
                                                span: a.span,
                                                func: action.name.clone(),
                                                max: def.params.len(),
                                            });
                                            continue;
                                        }
                                    },
                                };
                                if let Some(j) = self.test_literal(&a.value, "an effect argument") {
                                    out.push((name, j));
                                }
                            }
                            ExpectKind::Effect { negated: *negated, action: action.name.clone(), args: out }
                        }
                        ast::Expect::Expr(e) => {
                            // No event here: the expression reads the final store.
                            let mut cx = RuleCx {
                                phase: Phase::Body,
                                events: Vec::new(),
                                events_unknown: false,
                                locals: Vec::new(),
                                kinds: Vec::new(),
                                used: Vec::new(),
                                scopes: vec![Vec::new()],
                                filter: None,
                                in_after: false,
                            };
                            let x = self.expr(e, &mut cx, Hint::None);
                            if !matches!(x.ty, Ty::Bool | Ty::Error) {
                                let found = self.show(&x.ty);
                                self.errors.push(CheckError::ConditionNotBool {
                                    span: e.span,
                                    clause: "expect",
                                    found,
                                });
                            }
                            if let Some(span) = first_event(&x) {
                                self.errors.push(CheckError::UnknownName {
                                    span,
                                    name: "event".into(),
                                    suggestion: None,
                                    hint: Some("an `expect` reads the store after all the test's events, so there is no `event`; expect what a rule did instead (`expect RULE fires`, a field of a row)".into()),
                                });
                            }
                            ExpectKind::Expr(x)
                        }
                    };
                    test.expects.push(Expectation { kind, span: *span });
                }
            }
        }
        test
    }
}
