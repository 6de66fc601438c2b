//! The Cranelift JIT for `match` clauses.
//!
//! Per event type (plus one function for undeclared types), every `match`
//! condition of the rules that see that type (the rules naming it and the
//! `match any` rules, as [`RuleIndex`] decides) is compiled into ONE native
//! function over the decoder's slot array. Atoms shared between rules (the
//! same `path == literal`, ...) are evaluated once. String equality with a
//! literal is an integer compare of the decoder's interned ids.
//!
//! What is not compiled runs in the interpreter (the oracle), rule by rule,
//! keeping declaration order: see [`support`] for the reasons. A compiled
//! function may also answer "ask the interpreter" for one rule on one event
//! when a slot carries a kind it does not decide (see `codegen`).
#![allow(unsafe_code)]

mod codegen;
mod helpers;
mod lower;

use crate::decode::{DecodePlan, Decoded, Slot};
use crate::interp;
use crate::ir::{Program, RuleId};
use crate::matcher::{MatchScratch, Matcher, RuleIndex};
use crate::types::EventTypeId;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::Module;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why the JIT could not be built (the caller falls back to the interpreter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JitError {
    /// The host is not supported by Cranelift, or its flags were refused.
    Target(String),
    /// Cranelift rejected a generated function.
    Codegen(String),
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitError::Target(m) => write!(f, "JIT target unavailable: {m}"),
            JitError::Codegen(m) => write!(f, "JIT code generation failed: {m}"),
        }
    }
}

impl std::error::Error for JitError {}

/// Rules whose `match` clause the JIT does not compile, with the reason,
/// in declaration order (independent of a decode plan).
pub fn support(program: &Program) -> Vec<(RuleId, String)> {
    program.rules.iter().filter_map(|r| lower::lower_rule(r).err().map(|why| (r.id, why))).collect()
}

/// `unsafe extern "C" fn(slots, out, bufs) -> any`: see `codegen::define`.
type MatchFn = unsafe extern "C" fn(*const Slot, *mut u8, *const helpers::Bufs) -> u32;

#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A compiled rule and its index in the function's output.
    Compiled(RuleId, usize),
    Interpreted(RuleId),
}

struct TypeCode {
    func: Option<MatchFn>,
    /// The rules of this type in declaration order.
    entries: Vec<Entry>,
    /// Outputs the function writes.
    outputs: usize,
    /// The function reads slots below this index.
    slots_needed: usize,
    any_interpreted: bool,
}

/// The JIT matcher: one native function per event type.
pub struct JitMatcher {
    program: Arc<Program>,
    /// Indexed like `RuleIndex`: event type id, then undeclared.
    types: Vec<TypeCode>,
    fallbacks: Vec<(RuleId, String)>,
    /// The predicates the generated code passes to the helpers by address.
    /// Declared before `module`, never touched after `compile`.
    _consts: codegen::Consts,
    /// Owns the machine code the function pointers in `types` point into.
    module: Mutex<Option<JITModule>>,
    /// (rule, event) decisions of compiled rules that the native code left
    /// to the interpreter (an answer of 2, or slots it was not sized for).
    /// Counted only on that slow path, so the hot path stays untouched.
    asked: AtomicU64,
}

impl fmt::Debug for JitMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JitMatcher").field("types", &self.types.len()).field("fallbacks", &self.fallbacks).finish()
    }
}

struct PlanSyms<'a>(&'a DecodePlan);

impl codegen::Syms for PlanSyms<'_> {
    fn sym(&self, s: &str) -> Option<u32> {
        self.0.sym(s)
    }
}

impl JitMatcher {
    /// Compile every `match` clause of `program` for events decoded with
    /// `plan` (built from the same program: its intern table must hold the
    /// string literals of the conditions).
    pub fn compile(program: Arc<Program>, plan: &DecodePlan) -> Result<JitMatcher, JitError> {
        let mut flags = settings::builder();
        for (k, v) in [("use_colocated_libcalls", "false"), ("is_pic", "false"), ("opt_level", "speed")] {
            flags.set(k, v).map_err(|e| JitError::Target(e.to_string()))?;
        }
        let isa = cranelift_native::builder()
            .map_err(|e| JitError::Target(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Target(e.to_string()))?;
        let mut jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        jb.symbol(helpers::PRED_SYMBOL, helpers::herald_jit_pred as *const u8);
        let mut module = JITModule::new(jb);
        let pred_sig = codegen::pred_signature(&module);
        let pred_fn = module
            .declare_function(helpers::PRED_SYMBOL, cranelift_module::Linkage::Import, &pred_sig)
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        let mut consts: codegen::Consts = Vec::new();

        // Lower every rule once; a rule that fails anywhere runs interpreted.
        let mut fallbacks = Vec::new();
        let mut lowered: Vec<Option<lower::Cond>> = Vec::with_capacity(program.rules.len());
        let syms = PlanSyms(plan);
        for r in &program.rules {
            match lower::lower_rule(r) {
                Ok(c) => {
                    let mut atoms = Vec::new();
                    c.atoms(&mut atoms);
                    let bad = atoms.iter().find_map(|a| {
                        if a.path().0 as usize >= plan.slot_count() {
                            return Some("reads a path the decode plan does not have".to_string());
                        }
                        let mut strs = Vec::new();
                        match a {
                            lower::Atom::Cmp { lit: lower::Lit::Str(s), op: crate::ir::CmpOp::Eq, .. }
                            | lower::Atom::Cmp { lit: lower::Lit::Str(s), op: crate::ir::CmpOp::Ne, .. } => {
                                strs.push(s)
                            }
                            lower::Atom::In { items, .. } => strs.extend(items.iter().filter_map(|i| match i {
                                lower::Lit::Str(s) => Some(s),
                                _ => None,
                            })),
                            lower::Atom::Cmp { .. }
                            | lower::Atom::IsNull { .. }
                            | lower::Atom::Truthy(_)
                            | lower::Atom::Call { .. }
                            | lower::Atom::Time { .. } => {}
                        }
                        strs.iter()
                            .find(|s| plan.sym(s).is_none())
                            .map(|s| format!("the string literal {s:?} is not interned by the decode plan"))
                    });
                    match bad {
                        Some(why) => {
                            fallbacks.push((r.id, why));
                            lowered.push(None);
                        }
                        None => lowered.push(Some(c)),
                    }
                }
                Err(why) => {
                    fallbacks.push((r.id, why));
                    lowered.push(None);
                }
            }
        }

        let scalars: Vec<lower::Scalars> = program.rules.iter().map(lower::scalar_paths).collect();
        let index = RuleIndex::new(&program);
        let n = program.schema.events.len();
        let mut fctx = FunctionBuilderContext::new();
        let mut pending = Vec::with_capacity(n + 1);
        for t in 0..=n {
            let ty = (t < n).then_some(EventTypeId(t as u32));
            let mut entries = Vec::new();
            let mut conds: Vec<codegen::RuleCode<'_>> = Vec::new();
            let mut slots_needed = 0;
            for &id in index.rules(ty) {
                match &lowered[id.0 as usize] {
                    Some(c) => {
                        entries.push(Entry::Compiled(id, conds.len()));
                        let mut atoms = Vec::new();
                        c.atoms(&mut atoms);
                        for a in atoms {
                            slots_needed = slots_needed.max(a.path().0 as usize + 1);
                        }
                        let (keys, guard) = lower::dispatch_keys(c, &scalars[id.0 as usize]);
                        let keys = keys.into_iter().filter_map(|(p, lit)| plan.sym(&lit).map(|sym| (p, sym))).collect();
                        conds.push(codegen::RuleCode { cond: c, keys, guard });
                    }
                    None => entries.push(Entry::Interpreted(id)),
                }
            }
            let func = if conds.is_empty() {
                None
            } else {
                let name = format!("herald_match_{t}");
                Some(
                    codegen::define(&mut module, &mut fctx, &name, &conds, &syms, pred_fn, &mut consts)
                        .map_err(JitError::Codegen)?,
                )
            };
            let any_interpreted = entries.iter().any(|e| matches!(e, Entry::Interpreted(_)));
            pending.push((func, entries, conds.len(), slots_needed, any_interpreted));
        }
        module.finalize_definitions().map_err(|e| JitError::Codegen(e.to_string()))?;
        let types = pending
            .into_iter()
            .map(|(func, entries, outputs, slots_needed, any_interpreted)| {
                let func = func.map(|id| {
                    let p = module.get_finalized_function(id);
                    // SAFETY: `p` is the entry of a function just defined and
                    // finalized with the signature `(ptr, ptr, ptr) -> i32` in the
                    // host's default calling convention (`make_signature`),
                    // which is `extern "C"` on every host Cranelift supports.
                    // The module owning the code lives as long as `self`.
                    unsafe { std::mem::transmute::<*const u8, MatchFn>(p) }
                });
                TypeCode { func, entries, outputs, slots_needed, any_interpreted }
            })
            .collect();
        Ok(JitMatcher {
            program,
            types,
            fallbacks,
            _consts: consts,
            module: Mutex::new(Some(module)),
            asked: AtomicU64::new(0),
        })
    }

    /// Rules run by the interpreter, with the reason, in declaration order.
    pub fn fallbacks(&self) -> &[(RuleId, String)] {
        &self.fallbacks
    }

    /// How many (rule, event) decisions of compiled rules the native code
    /// has left to the interpreter so far.
    pub fn asked(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }

    /// Is this rule's `match` clause compiled?
    pub fn is_compiled(&self, id: RuleId) -> bool {
        !self.fallbacks.iter().any(|(r, _)| *r == id)
    }

    fn interpret(&self, id: RuleId, ev: &Decoded<'_>, scratch: &mut MatchScratch) {
        let rule = self.program.rule(id);
        match interp::eval_match(&self.program, rule, ev, &mut scratch.env) {
            Ok(true) => scratch.matched.push((id, None)),
            Ok(false) => {}
            Err(e) => scratch.matched.push((id, Some(e))),
        }
    }
}

impl Matcher for JitMatcher {
    fn matches(&self, ev: &Decoded<'_>, scratch: &mut MatchScratch) {
        scratch.matched.clear();
        let t = match ev.event_type {
            Some(t) if (t.0 as usize) < self.types.len() - 1 => t.0 as usize,
            _ => self.types.len() - 1,
        };
        let tc = &self.types[t];
        let slots = ev.slots();
        let out = &mut scratch.jit_out;
        let decided = match tc.func {
            Some(f) if slots.len() >= tc.slots_needed => {
                if out.len() < tc.outputs {
                    out.resize(tc.outputs, 0);
                }
                let bufs = helpers::Bufs::new(ev.line(), ev.scratch());
                // SAFETY: `f` reads only the slots below `tc.slots_needed`
                // (checked above to be in bounds) and writes only
                // `out[..tc.outputs]` (resized above); it passes `bufs` (built
                // from slices alive for the call) and boxed predicates owned
                // by `self` to `helpers::herald_jit_pred`; all pointers are
                // valid for the call and nothing keeps them.
                let any = unsafe { f(slots.as_ptr(), out.as_mut_ptr(), &bufs) };
                if any == 0 && !tc.any_interpreted {
                    return;
                }
                true
            }
            // No compiled rule, or slots the plan did not size for the
            // code: the interpreter decides every rule (correctness first).
            Some(_) | None => false,
        };
        for e in &tc.entries {
            match *e {
                Entry::Compiled(id, i) if decided => match scratch.jit_out[i] {
                    0 => {}
                    1 => scratch.matched.push((id, None)),
                    _ => {
                        self.asked.fetch_add(1, Ordering::Relaxed);
                        self.interpret(id, ev, scratch)
                    }
                },
                Entry::Compiled(id, _) => {
                    self.asked.fetch_add(1, Ordering::Relaxed);
                    self.interpret(id, ev, scratch)
                }
                Entry::Interpreted(id) => self.interpret(id, ev, scratch),
            }
        }
    }

    fn interpreted(&self) -> Vec<RuleId> {
        self.fallbacks.iter().map(|(r, _)| *r).collect()
    }

    fn name(&self) -> &'static str {
        "jit"
    }
}

impl Drop for JitMatcher {
    fn drop(&mut self) {
        let module = match self.module.get_mut() {
            Ok(m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(m) = module {
            // SAFETY: the only pointers into the module's memory are the
            // function pointers in `self.types`, which die with `self` and
            // are not called again: `drop` has exclusive access.
            unsafe { m.free_memory() };
        }
    }
}

/// Rules of `program` per compile status, for `check --verbose`: each rule
/// with `None` when compiled, or the reason it runs interpreted.
pub fn status(program: &Program) -> Vec<(RuleId, Option<String>)> {
    let why: HashMap<RuleId, String> = support(program).into_iter().collect();
    program.rules.iter().map(|r| (r.id, why.get(&r.id).cloned())).collect()
}

#[cfg(test)]
mod tests;
