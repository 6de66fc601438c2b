fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let t = std::time::Instant::now();
    let p = herald::syntax::parse(herald::span::FileId(0), &text);
    let el = t.elapsed();
    let sf = herald::span::SourceFile::new(&path, text.clone());
    if std::env::var("AST").is_ok() { println!("{:#?}", p.ast); }
    println!("{} items in {:?}", p.ast.items.len(), el);
    for d in &p.diagnostics {
        let (l, c) = sf.line_col(d.span.start as usize);
        println!("{}:{}:{}: {} {} [{}] help: {:?} labels: {:?}", path, l, c, d.code, d.message, d.label, d.help, d.labels.iter().map(|l| (sf.line_col(l.span.start as usize), &l.message)).collect::<Vec<_>>());
    }
}
