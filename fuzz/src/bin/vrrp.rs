//! AFL++ target: see [`rlvs_fuzz::vrrp`].
fn main() {
    afl::fuzz!(|data: &[u8]| rlvs_fuzz::vrrp(data));
}
