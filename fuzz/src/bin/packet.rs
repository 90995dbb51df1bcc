//! AFL++ target: see [`rlvs_fuzz::packet`].
fn main() {
    afl::fuzz!(|data: &[u8]| rlvs_fuzz::packet(data));
}
