//! Runs a target over files without AFL (built with coverage
//! instrumentation by scripts/fuzz.sh for the line-coverage report):
//! `replay TARGET FILE...`.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, files) = args.split_first().expect("replay TARGET FILE...");
    let (_, run) = rlvs_fuzz::TARGETS.iter().find(|(n, _)| n == name).expect("a known target");
    for f in files {
        run(&std::fs::read(f).unwrap());
    }
}
