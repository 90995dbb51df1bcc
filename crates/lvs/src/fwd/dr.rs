//! Direct routing: the IP packet is untouched (it stays addressed to the VIP,
//! which the real server holds on its loopback); only the link-layer header
//! changes, so the frame reaches the real server's MAC.

use rlvs_wire::{EthernetAddress, EthernetFrame};

/// Readdresses an Ethernet frame to the real server's next hop.
pub fn rewrite(frame: &mut [u8], src: EthernetAddress, dst: EthernetAddress) -> Result<(), rlvs_wire::Error> {
    let mut eth = EthernetFrame::new_checked(frame)?;
    eth.set_src_addr(src);
    eth.set_dst_addr(dst);
    Ok(())
}
