//! AFL++ target: see [`rlvs_fuzz::sync`].
fn main() {
    afl::fuzz!(|data: &[u8]| rlvs_fuzz::sync(data));
}
