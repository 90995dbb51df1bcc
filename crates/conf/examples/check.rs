//! Prints the diagnostics and model for a keepalived.conf.
fn main() {
    let path = std::env::args().nth(1).expect("usage: check FILE");
    match rlvs_conf::load_file(std::path::Path::new(&path), rlvs_conf::Options::default()) {
        Ok(l) => {
            for d in &l.diags {
                println!("{d}");
            }
            if std::env::args().nth(2).is_some() {
                println!("{:#?}", l.config);
            }
        }
        Err(d) => println!("{d}"),
    }
}
