//! The seed tutorial's section 2 topology: one broadcast domain (a bridge),
//! c1 the client, c2 the director, c3 and c4 the web servers, and the VIP
//! 10.0.0.100 that only the director answers ARP for.

use crate::{web, Lab};
use anyhow::{bail, Result};
use std::time::Duration;

pub const VIP: &str = "10.0.0.100";
pub const CLIENT: &str = "10.1.1.10";
pub const DIRECTOR: &str = "10.1.1.243";
pub const WEB1: &str = "10.1.1.244";
pub const WEB2: &str = "10.1.1.245";

pub struct SeedDr {
    pub client: String,
    pub director: String,
    pub web1: String,
    pub web2: String,
}

/// Builds the topology and starts the two web servers ("rs1", "rs2"), each
/// also serving `big` when given. The client's route to the VIP is not added:
/// the seed adds it by hand (`route add -host 10.0.0.100 dev eth0`).
pub fn build(lab: &mut Lab, big: Option<&[u8]>) -> Result<SeedDr> {
    let client = lab.host("c1", "eth0", "02:00:00:00:00:01", &format!("{CLIENT}/24"))?;
    let director = lab.host("c2", "eth0", "02:00:00:00:00:02", &format!("{DIRECTOR}/24"))?;
    let web1 = lab.host("c3", "eth0", "02:00:00:00:00:03", &format!("{WEB1}/24"))?;
    let web2 = lab.host("c4", "eth0", "02:00:00:00:00:04", &format!("{WEB2}/24"))?;
    let extra: Vec<(&str, &[u8])> = big.map(|b| vec![("big", b)]).unwrap_or_default();
    web::start(lab, &web1, "web1", "rs1", &extra)?;
    web::start(lab, &web2, "web2", "rs2", &extra)?;
    for (ns, ip, body) in [(&web1, WEB1, "rs1"), (&web2, WEB2, "rs2")] {
        let url = format!("http://{ip}/");
        let ready = Lab::wait_for(Duration::from_secs(10), || {
            let out = lab.run(&client, &["curl", "-s", "--max-time", "1", &url]).ok()?;
            (String::from_utf8_lossy(&out.stdout).trim() == body).then_some(())
        });
        if ready.is_none() {
            bail!("web server in {ns} did not come up");
        }
    }
    Ok(SeedDr { client, director, web1, web2 })
}

/// The client's host route to the VIP, as in the seed's step 2.4.
pub fn add_client_route(lab: &Lab, t: &SeedDr) -> Result<()> {
    lab.ok(&t.client, &["ip", "route", "add", VIP, "dev", "eth0"])?;
    Ok(())
}
