//! The compiler driver: parse, lower the schema, check. Pure: it takes
//! source text that the caller has already read.
