//! Cranelift code generation: one native function per event type over the
//! decoder's slot array.
//!
//! Every rule result is three-valued, as an `i8`: 0 = no match, 1 = match,
//! 2 = "ask the interpreter" (a slot carries a kind the native code does not
//! decide, e.g. a string ordered against a string, or an array). The
//! function is straight-line code: each distinct atom (path test) is
//! evaluated once, with `select`s instead of branches, then every rule's
//! condition combines its atoms with the interpreter's left-to-right
//! short-circuit rules:
//!
//! - `a and b`: `a` when `a` is 0 or 2, else `b`;
//! - `a or b`: `a` when `a` is 1 or 2, else `b`;
//! - `not a`: 2 stays 2, else `1 - a`.
//!
//! Atoms never fail, so evaluating all of them eagerly is unobservable; an
//! atom whose answer needs the interpreter (2) makes every rule reading it
//! before a decision ask the interpreter, which then reproduces exactly the
//! interpreter's value or run-time error.

use super::lower::{Atom, Cond, Lit, Pred};
use crate::decode::{tag, Slot};
use crate::ir::{CmpOp, PathId};
use crate::value::{parse_timestamp, parse_uuid};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, AbiParam, FuncRef, InstBuilder, MemFlagsData, UserFuncName, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Switch};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module};
use std::collections::HashMap;

const SLOT_SIZE: i64 = std::mem::size_of::<Slot>() as i64;
const OFF_TAG: i32 = 0;
const OFF_SYM: i32 = 4;
const OFF_A: i32 = 8;
const OFF_B: i32 = 16;

/// Interned ids of string literals (from the decode plan).
pub(crate) trait Syms {
    fn sym(&self, s: &str) -> Option<u32>;
}

/// One rule for [`define`]: its condition and its dispatch keys (a
/// `string` path and the interned id of the literal it must equal, see
/// `lower::dispatch_keys`).
pub(crate) struct RuleCode<'a> {
    pub cond: &'a Cond,
    pub keys: Vec<(PathId, u32)>,
    /// Paths read before the keys: a contradicted one makes the rule ask
    /// the interpreter whatever the dispatch value (`lower::dispatch_keys`).
    pub guard: Vec<PathId>,
}

/// Predicates the generated code reads by address: each boxed so that its
/// address survives the vector growing.
#[allow(clippy::vec_box)]
pub(crate) type Consts = Vec<Box<Pred>>;

/// The signature of `helpers::herald_jit_pred`: `(slot, bufs, pred) -> u32`.
pub(crate) fn pred_signature(module: &JITModule) -> cranelift_codegen::ir::Signature {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for _ in 0..3 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

/// Generate one function `fn(slots: *const Slot, out: *mut u8, bufs: *const Bufs) -> u32`:
/// `out[i]` gets rule `i`'s three-valued result; the return value is
/// non-zero when any result is non-zero (so a non-firing event costs one
/// call and no further work).
///
/// Rules sharing a dispatch path (e.g. `context.model.model_name`) are
/// grouped by literal: one `switch` on the path's interned id runs only the
/// group whose literal the event carries; the other groups' results are 0,
/// written up front. Rules without such a key run for every event.
pub(crate) fn define(
    module: &mut JITModule,
    fctx: &mut FunctionBuilderContext,
    name: &str,
    rules: &[RuleCode<'_>],
    syms: &dyn Syms,
    pred_fn: FuncId,
    consts: &mut Consts,
) -> Result<FuncId, String> {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for _ in 0..3 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.returns.push(AbiParam::new(types::I32));
    let id = module.declare_function(name, Linkage::Local, &sig).map_err(|e| e.to_string())?;
    let cfg = module.target_config();
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let pred_ref = module.declare_func_in_func(pred_fn, &mut ctx.func);

    // The dispatch path: the one that leaves the least work for the worst
    // case, i.e. the fewest rules outside its groups plus its largest group.
    let mut paths: Vec<PathId> = rules.iter().flat_map(|r| r.keys.iter().map(|(p, _)| *p)).collect();
    paths.sort();
    paths.dedup();
    let group_by = |d: PathId| {
        let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
        let mut always = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match r.keys.iter().find(|(p, _)| *p == d) {
                Some(&(_, sym)) => match groups.iter_mut().find(|(s, _)| *s == sym) {
                    Some((_, v)) => v.push(i),
                    None => groups.push((sym, vec![i])),
                },
                None => always.push(i),
            }
        }
        (groups, always)
    };
    let cost = |(groups, always): &(Vec<(u32, Vec<usize>)>, Vec<usize>)| {
        always.len() + groups.iter().map(|(_, v)| v.len()).max().unwrap_or(0)
    };
    let best = paths.into_iter().map(|p| (p, group_by(p))).min_by_key(|(p, g)| (cost(g), *p));
    let (dispatch, groups, always) = match best {
        Some((p, (groups, always))) if cost(&(groups.clone(), always.clone())) < rules.len() => {
            (Some(p), groups, always)
        }
        _ => (None, Vec::new(), (0..rules.len()).collect()),
    };
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let slots = b.block_params(block)[0];
        let out = b.block_params(block)[1];
        let bufs = b.block_params(block)[2];
        let mut g = Gen {
            b,
            slots,
            bufs,
            ptr,
            pred_ref,
            consts,
            const_at: HashMap::new(),
            loads: HashMap::new(),
            atoms: HashMap::new(),
            syms,
        };
        let mut any = g.k(0);
        for &i in &always {
            let v = g.cond(rules[i].cond)?;
            g.b.ins().store(MemFlagsData::trusted(), v, out, i as i32);
            any = g.b.ins().bor(any, v);
        }
        if let Some(path) = dispatch {
            let exit = g.b.create_block();
            g.b.append_block_param(exit, types::I8);
            // The switch decides a grouped rule from its key alone, which is
            // right only when nothing read before the key contradicts the
            // schema (that read is the interpreter's R0006). Such events are
            // rare: they take a block that evaluates every grouped rule in
            // order instead.
            let mut guard: Vec<PathId> =
                groups.iter().flat_map(|(_, m)| m.iter().flat_map(|&i| rules[i].guard.iter().copied())).collect();
            guard.sort();
            guard.dedup();
            if !guard.is_empty() {
                let mut contra = g.k(0);
                for p in guard {
                    let c = g.tag_is(p, tag::CONTRA);
                    contra = g.b.ins().bor(contra, c);
                }
                let full = g.b.create_block();
                let fast = g.b.create_block();
                g.b.ins().brif(contra, full, &[], fast, &[]);
                let (loads, atoms) = (g.loads.clone(), g.atoms.clone());
                g.b.switch_to_block(full);
                let mut any_f = any;
                for (_, members) in &groups {
                    for &i in members {
                        let v = g.cond(rules[i].cond)?;
                        g.b.ins().store(MemFlagsData::trusted(), v, out, i as i32);
                        any_f = g.b.ins().bor(any_f, v);
                    }
                }
                g.b.ins().jump(exit, &[any_f.into()]);
                // Values computed in `full` do not dominate `fast`.
                g.loads = loads;
                g.atoms = atoms;
                g.b.switch_to_block(fast);
            }
            let zero = g.k(0);
            for (_, members) in &groups {
                for &i in members {
                    g.b.ins().store(MemFlagsData::trusted(), zero, out, i as i32);
                }
            }
            let sym = g.field(path, OFF_SYM);
            // Loaded here, before the switch, so that it dominates the
            // `otherwise` block that reads it.
            let dtag = g.field(path, OFF_TAG);
            let otherwise = g.b.create_block();
            let mut sw = Switch::new();
            let blocks: Vec<_> = groups.iter().map(|_| g.b.create_block()).collect();
            for ((sym, _), blk) in groups.iter().zip(&blocks) {
                sw.set_entry(*sym as u128, *blk);
            }
            sw.emit(&mut g.b, sym, otherwise);
            g.b.switch_to_block(otherwise);
            // A dispatch value that contradicts the schema has no symbol:
            // every grouped rule tests it, so each asks the interpreter
            // (which reports the rule error).
            let contra = g.b.ins().icmp_imm_s(IntCC::Equal, dtag, tag::CONTRA as i64);
            let two = g.k(2);
            let zero = g.k(0);
            let ask = g.select(contra, two, zero);
            for (_, members) in &groups {
                for &i in members {
                    g.b.ins().store(MemFlagsData::trusted(), ask, out, i as i32);
                }
            }
            let any_o = g.b.ins().bor(any, ask);
            g.b.ins().jump(exit, &[any_o.into()]);
            // Values computed before the switch dominate every group.
            let (loads, atoms) = (g.loads.clone(), g.atoms.clone());
            for ((_, members), blk) in groups.iter().zip(&blocks) {
                g.b.switch_to_block(*blk);
                let mut any_g = any;
                for &i in members {
                    let v = g.cond(rules[i].cond)?;
                    g.b.ins().store(MemFlagsData::trusted(), v, out, i as i32);
                    any_g = g.b.ins().bor(any_g, v);
                }
                g.b.ins().jump(exit, &[any_g.into()]);
                g.loads = loads.clone();
                g.atoms = atoms.clone();
            }
            g.b.switch_to_block(exit);
            any = g.b.block_params(exit)[0];
        }
        let r = g.b.ins().uextend(types::I32, any);
        g.b.ins().return_(&[r]);
        g.b.seal_all_blocks();
        g.b.finalize(cfg);
    }
    module.define_function(id, &mut ctx).map_err(|e| format!("{e:?}"))?;
    module.clear_context(&mut ctx);
    Ok(id)
}

struct Gen<'a, 'f> {
    b: FunctionBuilder<'f>,
    slots: Value,
    /// The `*const Bufs` parameter, passed on to the helpers.
    bufs: Value,
    ptr: types::Type,
    pred_ref: FuncRef,
    /// Predicates the helpers read, owned by the matcher (boxed: the code
    /// embeds their addresses).
    consts: &'a mut Consts,
    /// Index in `consts` of each predicate already boxed.
    const_at: HashMap<Pred, usize>,
    /// Slot fields already loaded: (path, offset).
    loads: HashMap<(PathId, i32), Value>,
    /// Atoms already evaluated (common-subexpression elimination).
    atoms: HashMap<Atom, Value>,
    syms: &'a dyn Syms,
}

impl Gen<'_, '_> {
    fn k(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I8, v)
    }

    fn field(&mut self, p: PathId, off: i32) -> Value {
        if let Some(v) = self.loads.get(&(p, off)) {
            return *v;
        }
        let ty = match off {
            OFF_TAG | OFF_SYM => types::I32,
            _ => types::I64,
        };
        let at = (p.0 as i64 * SLOT_SIZE) as i32 + off;
        let v = self.b.ins().load(ty, MemFlagsData::trusted(), self.slots, at);
        self.loads.insert((p, off), v);
        v
    }

    fn float_a(&mut self, p: PathId) -> Value {
        let a = self.field(p, OFF_A);
        self.b.ins().bitcast(types::F64, MemFlagsData::new(), a)
    }

    fn tag_is(&mut self, p: PathId, t: u32) -> Value {
        let tg = self.field(p, OFF_TAG);
        self.b.ins().icmp_imm_s(IntCC::Equal, tg, t as i64)
    }

    fn select(&mut self, c: Value, x: Value, y: Value) -> Value {
        self.b.ins().select(c, x, y)
    }

    fn not01(&mut self, v: Value) -> Value {
        self.b.ins().bxor_imm_s(v, 1)
    }

    fn cond(&mut self, c: &Cond) -> Result<Value, String> {
        Ok(match c {
            Cond::Const(b) => self.k(*b as i64),
            Cond::Atom(a) => self.atom(a)?,
            Cond::Not(x) => {
                let v = self.cond(x)?;
                let unk = self.b.ins().icmp_imm_s(IntCC::Equal, v, 2);
                let flipped = self.not01(v);
                self.select(unk, v, flipped)
            }
            Cond::And(x, y) => {
                let a = self.cond(x)?;
                let bv = self.cond(y)?;
                let t = self.b.ins().icmp_imm_s(IntCC::Equal, a, 1);
                self.select(t, bv, a)
            }
            Cond::Or(x, y) => {
                let a = self.cond(x)?;
                let bv = self.cond(y)?;
                let f = self.b.ins().icmp_imm_s(IntCC::Equal, a, 0);
                self.select(f, bv, a)
            }
        })
    }

    fn atom(&mut self, a: &Atom) -> Result<Value, String> {
        if let Some(v) = self.atoms.get(a) {
            return Ok(*v);
        }
        let v = match a {
            Atom::IsNull { path, negated } => {
                let tg = self.field(*path, OFF_TAG);
                let nullish = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, tg, tag::NULL as i64);
                if *negated {
                    self.not01(nullish)
                } else {
                    nullish
                }
            }
            Atom::Truthy(p) => {
                let is_bool = self.tag_is(*p, tag::BOOL);
                let a = self.field(*p, OFF_A);
                let bit = self.b.ins().ireduce(types::I8, a);
                let unk = self.k(2);
                self.select(is_bool, bit, unk)
            }
            Atom::Cmp { path, op, lit } => self.cmp(*path, *op, lit)?,
            Atom::Time { path, op, rhs, lo, hi } => {
                // The path is a `timestamp`: its slot is TIMESTAMP, absent,
                // null or CONTRA (answered below); any other tag asks.
                let r = self.ts_cmp(*path, *op, *rhs);
                let ge = self.ts_cmp(*path, CmpOp::Ge, *lo);
                let le = self.ts_cmp(*path, CmpOp::Le, *hi);
                let inside = self.b.ins().band(ge, le);
                // Outside, the interpreter's arithmetic fails (R0007).
                let unk = self.k(2);
                let v = self.select(inside, r, unk);
                let is_ts = self.tag_is(*path, tag::TIMESTAMP);
                let v = self.select(is_ts, v, unk);
                // Arithmetic on absent or null is absent: every comparison
                // is false but `!=`.
                let tg = self.field(*path, OFF_TAG);
                let nullish = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, tg, tag::NULL as i64);
                let on_nullish = self.k((*op == CmpOp::Ne) as i64);
                self.select(nullish, on_nullish, v)
            }
            Atom::Call { path, pred } => {
                let i = match self.const_at.get(pred) {
                    Some(&i) => i,
                    None => {
                        self.consts.push(Box::new(pred.clone()));
                        self.const_at.insert(pred.clone(), self.consts.len() - 1);
                        self.consts.len() - 1
                    }
                };
                // The box's heap address is stable while the matcher lives.
                let addr = &*self.consts[i] as *const Pred as i64;
                let k = self.b.ins().iconst(self.ptr, addr);
                let slot = self.b.ins().iadd_imm_s(self.slots, path.0 as i64 * SLOT_SIZE);
                let call = self.b.ins().call(self.pred_ref, &[slot, self.bufs, k]);
                let r = self.b.inst_results(call)[0];
                self.b.ins().ireduce(types::I8, r)
            }
            Atom::In { path, items } => {
                // Three-valued `any`: 1 if an item is equal, else 2 if one
                // is undecided, else 0. Equality never fails, so no order.
                let mut any_true = self.k(0);
                let mut any_unk = self.k(0);
                for it in items {
                    let r = self.cmp(*path, CmpOp::Eq, it)?;
                    let t = self.b.ins().icmp_imm_s(IntCC::Equal, r, 1);
                    let u = self.b.ins().icmp_imm_s(IntCC::Equal, r, 2);
                    any_true = self.b.ins().bor(any_true, t);
                    any_unk = self.b.ins().bor(any_unk, u);
                }
                let one = self.k(1);
                let two = self.k(2);
                let zero = self.k(0);
                let unk_or_no = self.select(any_unk, two, zero);
                self.select(any_true, one, unk_or_no)
            }
        };
        // A value that contradicts the schema is no value: the interpreter
        // reports the rule error (if the rule's logic reaches this atom).
        let contra = self.tag_is(a.path(), tag::CONTRA);
        let unk = self.k(2);
        let v = self.select(contra, unk, v);
        self.atoms.insert(a.clone(), v);
        Ok(v)
    }

    /// `path op lit` with the interpreter's `ops::compare` semantics,
    /// dispatching on the slot's run-time tag.
    fn cmp(&mut self, p: PathId, op: CmpOp, lit: &Lit) -> Result<Value, String> {
        let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
        // Tags not listed below are present values of another kind:
        // `deep_eq` is false and there is no order, so only `!=` holds.
        let mut result = self.k((op == CmpOp::Ne) as i64);
        let mut cases: Vec<(u32, Value)> = Vec::new();
        match lit {
            // `x != null` as a comparison is `not (x == null)`: true.
            Lit::Null => return Ok(self.k((op == CmpOp::Ne) as i64)),
            Lit::Bool(v) => {
                if !ordering {
                    let a = self.field(p, OFF_A);
                    let eq = self.b.ins().icmp_imm_s(IntCC::Equal, a, *v as i64);
                    cases.push((tag::BOOL, self.eq_to_op(op, eq)));
                }
            }
            Lit::Int(n) => {
                let a = self.field(p, OFF_A);
                let r = self.b.ins().icmp_imm_s(int_cc(op), a, *n);
                cases.push((tag::INT, r));
                let x = self.float_a(p);
                let y = self.b.ins().f64const(*n as f64);
                let r = self.fcmp(op, x, y);
                cases.push((tag::FLOAT, r));
            }
            Lit::Float(bits) => {
                let y = self.b.ins().f64const(f64::from_bits(*bits));
                let a = self.field(p, OFF_A);
                let xi = self.b.ins().fcvt_from_sint(types::F64, a);
                let r = self.fcmp(op, xi, y);
                cases.push((tag::INT, r));
                let x = self.float_a(p);
                let r = self.fcmp(op, x, y);
                cases.push((tag::FLOAT, r));
            }
            Lit::Str(s) => {
                if ordering {
                    // Byte order of two strings: left to the interpreter.
                    let unk = self.k(2);
                    cases.push((tag::STR, unk));
                } else {
                    let Some(id) = self.syms.sym(s) else {
                        return Err(format!("the string literal {s:?} is not interned by the decoder"));
                    };
                    let sym = self.field(p, OFF_SYM);
                    let eq = self.b.ins().icmp_imm_s(IntCC::Equal, sym, id as i64);
                    cases.push((tag::STR, self.eq_to_op(op, eq)));
                }
                if let (Some(u), false) = (parse_uuid(s), ordering) {
                    let eq = self.uuid_eq(p, u);
                    cases.push((tag::UUID, self.eq_to_op(op, eq)));
                }
                if let Some(t) = parse_timestamp(s) {
                    let r = self.ts_cmp(p, op, t);
                    cases.push((tag::TIMESTAMP, r));
                }
            }
            Lit::Uuid(u) => {
                if !ordering {
                    let eq = self.uuid_eq(p, *u);
                    cases.push((tag::UUID, self.eq_to_op(op, eq)));
                    // A string against a uuid is parsed by the interpreter.
                    let unk = self.k(2);
                    cases.push((tag::STR, unk));
                }
            }
            Lit::Timestamp(t) => {
                let r = self.ts_cmp(p, op, *t);
                cases.push((tag::TIMESTAMP, r));
                let unk = self.k(2);
                cases.push((tag::STR, unk));
            }
        }
        for (t, v) in cases {
            let is = self.tag_is(p, t);
            result = self.select(is, v, result);
        }
        // Arrays and objects become values by parsing their JSON: left to
        // the interpreter. Absent and null compare false, except under
        // `!=`, which is `not ==` (LANGUAGE.md v1).
        let unk = self.k(2);
        let is_arr = self.tag_is(p, tag::ARRAY);
        let is_obj = self.tag_is(p, tag::OBJECT);
        let complex = self.b.ins().bor(is_arr, is_obj);
        result = self.select(complex, unk, result);
        let tg = self.field(p, OFF_TAG);
        let nullish = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, tg, tag::NULL as i64);
        let on_nullish = self.k((op == CmpOp::Ne) as i64);
        Ok(self.select(nullish, on_nullish, result))
    }

    fn eq_to_op(&mut self, op: CmpOp, eq: Value) -> Value {
        match op {
            CmpOp::Ne => self.not01(eq),
            CmpOp::Eq | CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => eq,
        }
    }

    fn fcmp(&mut self, op: CmpOp, x: Value, y: Value) -> Value {
        match op {
            // `!=` is `not deep_eq`: true for NaN, like the interpreter.
            CmpOp::Ne => {
                let eq = self.b.ins().fcmp(FloatCC::Equal, x, y);
                self.not01(eq)
            }
            CmpOp::Eq => self.b.ins().fcmp(FloatCC::Equal, x, y),
            CmpOp::Lt => self.b.ins().fcmp(FloatCC::LessThan, x, y),
            CmpOp::Le => self.b.ins().fcmp(FloatCC::LessThanOrEqual, x, y),
            CmpOp::Gt => self.b.ins().fcmp(FloatCC::GreaterThan, x, y),
            CmpOp::Ge => self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, y),
        }
    }

    fn uuid_eq(&mut self, p: PathId, u: u128) -> Value {
        let a = self.field(p, OFF_A);
        let b = self.field(p, OFF_B);
        let hi = self.b.ins().icmp_imm_s(IntCC::Equal, a, (u >> 64) as u64 as i64);
        let lo = self.b.ins().icmp_imm_s(IntCC::Equal, b, u as u64 as i64);
        self.b.ins().band(hi, lo)
    }

    /// A TIMESTAMP slot (`a` low 64 bits, `b` high 64 bits of i128 nanos)
    /// against a constant, as a signed 128-bit comparison.
    fn ts_cmp(&mut self, p: PathId, op: CmpOp, t: i128) -> Value {
        let lo = t as u64 as i64;
        let hi = (t >> 64) as i64;
        let a = self.field(p, OFF_A);
        let b = self.field(p, OFF_B);
        let hi_eq = self.b.ins().icmp_imm_s(IntCC::Equal, b, hi);
        let lo_eq = self.b.ins().icmp_imm_s(IntCC::Equal, a, lo);
        let eq = self.b.ins().band(hi_eq, lo_eq);
        let strict = |g: &mut Self, hcc: IntCC, lcc: IntCC| {
            let h = g.b.ins().icmp_imm_s(hcc, b, hi);
            let l = g.b.ins().icmp_imm_s(lcc, a, lo);
            let l = g.b.ins().band(hi_eq, l);
            g.b.ins().bor(h, l)
        };
        match op {
            CmpOp::Eq => eq,
            CmpOp::Ne => self.not01(eq),
            CmpOp::Lt => strict(self, IntCC::SignedLessThan, IntCC::UnsignedLessThan),
            CmpOp::Gt => strict(self, IntCC::SignedGreaterThan, IntCC::UnsignedGreaterThan),
            CmpOp::Le => {
                let lt = strict(self, IntCC::SignedLessThan, IntCC::UnsignedLessThan);
                self.b.ins().bor(lt, eq)
            }
            CmpOp::Ge => {
                let gt = strict(self, IntCC::SignedGreaterThan, IntCC::UnsignedGreaterThan);
                self.b.ins().bor(gt, eq)
            }
        }
    }
}

fn int_cc(op: CmpOp) -> IntCC {
    match op {
        CmpOp::Eq => IntCC::Equal,
        CmpOp::Ne => IntCC::NotEqual,
        CmpOp::Lt => IntCC::SignedLessThan,
        CmpOp::Le => IntCC::SignedLessThanOrEqual,
        CmpOp::Gt => IntCC::SignedGreaterThan,
        CmpOp::Ge => IntCC::SignedGreaterThanOrEqual,
    }
}
