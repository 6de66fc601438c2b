//! Prints the SQL expression of an event's partition (`--partitions N`) for
//! benches/workers/run.sh, which waits for each partition's newest event:
//! one definition of the partition key (`store::pg_source::partition_sql`).
fn main() {
    let parts: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    println!("{}", herald::store::pg_source::partition_sql(parts));
}
