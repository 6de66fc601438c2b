//! `ip_in(ip, range)`: membership of an address in a CIDR range.

use super::*;
use crate::ir::Cidr;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "ip_in",
    params: &[Param::req("ip", "string"), Param::lit("range")],
    returns: "bool",
    doc: "is the address in the range (a literal CIDR, IPv4 or IPv6); false for anything not an address",
    aliases: &["cidr_match", "in_cidr", "ip_in_range", "cidr"],
    in_match: true,
    jit: Jit::Predicate,
    sql: Sql::Unsupported("`ip_in` on fields is not supported"),
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    strings(args, &[0])?;
    let lit = literal(args, 1)?;
    match Cidr::parse(&lit) {
        Some(c) => Ok((Builtin::IpIn(c), Ty::Bool)),
        None => Err(vec![TypeFault::InvalidCidr { index: 1, found: lit }]),
    }
}

fn eval(b: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    let Builtin::IpIn(cidr) = b else {
        return Err(mismatch(b));
    };
    Ok(Value::Bool(match ops::str_arg(&args[0])? {
        Some(s) => cidr.contains_str(s),
        None => false,
    }))
}
