//! The PostgreSQL test harness itself: a server answers, each test gets a
//! database of its own, and authentik's recorded tables can be created in it.

mod pg_support;

use pg_support::TestDb;

#[test]
fn each_test_gets_an_empty_database_of_its_own() {
    let a = TestDb::new("harness_a");
    let b = TestDb::new("harness_b");
    assert_ne!(a.url, b.url);
    let mut ca = a.client();
    ca.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)").unwrap();
    let mut cb = b.client();
    let n: i64 =
        cb.query_one("SELECT count(*) FROM information_schema.tables WHERE table_name = 't'", &[]).unwrap().get(0);
    assert_eq!(n, 0, "databases are independent");
    let x: i32 = ca.query_one("SELECT x FROM t", &[]).unwrap().get(0);
    assert_eq!(x, 1);
}

#[test]
fn dropping_the_handle_drops_the_database() {
    let name = {
        let db = TestDb::new("harness_drop");
        db.client().batch_execute("SELECT 1").unwrap();
        db.name.clone()
    };
    let n: i64 =
        pg_support::admin().query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name]).unwrap().get(0);
    assert_eq!(n, 0);
}
