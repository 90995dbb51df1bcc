//! AFL++ target: see [`rlvs_fuzz::adm`].
fn main() {
    afl::fuzz!(|data: &[u8]| rlvs_fuzz::adm(data));
}
