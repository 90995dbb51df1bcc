//! AFL++ target: see [`rlvs_fuzz::conf`].
fn main() {
    afl::fuzz!(|data: &[u8]| rlvs_fuzz::conf(data));
}
