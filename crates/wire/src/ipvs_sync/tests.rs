use super::*;

fn v4(c: &str, cport: u16) -> SyncConn {
    SyncConn {
        protocol: 6,
        flags: flags::DROUTE | flags::NOOUTPUT,
        state: 1,
        caddr: c.parse().unwrap(),
        cport,
        vaddr: "10.0.0.100".parse().unwrap(),
        vport: 80,
        daddr: "10.1.1.244".parse().unwrap(),
        dport: 80,
        fwmark: 0,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
        fnat_local: None,
        fnat_offsets: None,
    }
}

fn one(c: &SyncConn) -> Vec<u8> {
    let mut b = Builder::new(7, 1472);
    assert!(b.push(c));
    b.finish()
}

#[test]
fn a_connection_as_the_kernel_lays_it_out() {
    let m = one(&v4("10.1.1.10", 50000));
    let expect: Vec<u8> = [
        &[0u8, 7, 0, 44, 1, 1, 0, 0][..],  // header: syncid 7, size 44, one conn, version 1
        &[0, 6, 0, 36],                    // IPv4, TCP, version 0 | size 36
        &[0, 0, 0, 0x83],                  // DROUTE | NOOUTPUT
        &[0, 1, 0xc3, 0x50, 0, 80, 0, 80], // ESTABLISHED, cport 50000, vport, dport
        &[0, 0, 0, 0, 0, 0, 3, 0x84],      // fwmark 0, timeout 900
        &[10, 1, 1, 10, 10, 0, 0, 100, 10, 1, 1, 244],
    ]
    .concat();
    assert_eq!(m, expect);
    let back = parse(&m).unwrap();
    assert_eq!((back.version, back.syncid), (1, 7));
    assert_eq!(back.conns, vec![v4("10.1.1.10", 50000)]);
}

#[test]
fn every_parameter_round_trips_and_connections_stay_aligned() {
    let mut a = v4("10.1.1.10", 1);
    a.flags |= flags::SEQ_MASK;
    a.seq = Some((Seq { init_seq: 1, delta: 2, previous_delta: 3 }, Seq { init_seq: 4, delta: 5, previous_delta: 6 }));
    a.pe_data = Some(b"call-id-1".to_vec());
    a.pe_name = Some(b"sip".to_vec());
    a.fnat_local = Some(("10.1.1.2".parse().unwrap(), 40000));
    a.fnat_offsets = Some(FnatOffsets { seq: 0xdead_beef, ts: Some(77) });
    let mut b6 = v4("10.1.1.10", 2);
    b6.caddr = "2001:db8::10".parse().unwrap();
    b6.vaddr = "2001:db8::100".parse().unwrap();
    b6.daddr = "2001:db8::244".parse().unwrap();
    b6.fnat_local = Some(("2001:db8::2".parse().unwrap(), 40001));
    b6.fnat_offsets = Some(FnatOffsets { seq: 9, ts: None });
    let mut b = Builder::new(1, 1472);
    assert!(b.push(&a) && b.push(&b6) && b.push(&v4("10.1.1.11", 3)));
    let m = b.finish();
    assert_ne!(a.wire_len() % 4, 0, "the test must cover padding");
    let back = parse(&m).unwrap();
    assert_eq!(back.conns, vec![a, b6, v4("10.1.1.11", 3)]);
    assert!(back.skipped.is_empty());
}

#[test]
fn a_message_never_grows_past_maxlen_or_255_connections() {
    let mut b = Builder::new(0, 1472);
    let mut n = 0;
    while b.push(&v4("10.1.1.10", n)) {
        n += 1;
    }
    let m = b.finish();
    assert!(m.len() <= 1472);
    assert_eq!(n, (1472 - 8) / 36);
    assert_eq!(parse(&m).unwrap().conns.len(), n as usize);
    let mut big = Builder::new(0, 65_000);
    let mut n = 0;
    while big.push(&v4("10.1.1.10", n)) {
        n += 1;
    }
    assert_eq!(n, 255);
}

#[test]
fn version_0_messages_are_read() {
    let mut m = vec![2u8, 9, 0, 0];
    for (cport, seq) in [(1000u16, false), (1001, true)] {
        m.extend_from_slice(&[0, 17]);
        m.extend_from_slice(&cport.to_be_bytes());
        m.extend_from_slice(&[0, 53, 0, 53, 10, 1, 1, 10, 10, 0, 0, 100, 10, 1, 1, 244]);
        m.extend_from_slice(&(if seq { 0x0600u16 } else { 0 }).to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        if seq {
            m.extend((1u8..=24).collect::<Vec<u8>>());
        }
    }
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let back = parse(&m).unwrap();
    assert_eq!((back.version, back.syncid, back.conns.len()), (0, 9, 2));
    assert_eq!((back.conns[0].protocol, back.conns[0].cport, back.conns[0].timeout), (17, 1000, 0));
    assert_eq!(back.conns[1].seq.unwrap().0.init_seq, 0x0102_0304);
}

#[test]
fn structural_lies_drop_the_whole_message() {
    let good = one(&v4("10.1.1.10", 1));
    assert_eq!(parse(&good[..3]), Err(Drop::TooShort));
    assert_eq!(parse(&good[..good.len() - 1]), Err(Drop::SizeMismatch));
    let mut count = good.clone();
    count[4] = 3;
    assert_eq!(parse(&count), Err(Drop::Truncated));
    let mut size = good.clone();
    size[8 + 3] = 200;
    assert_eq!(parse(&size), Err(Drop::Truncated));
    let mut short = good.clone();
    short[8 + 3] = 20;
    assert_eq!(parse(&short), Err(Drop::Truncated));
    let mut ver = good.clone();
    ver[8 + 2] = 0x10;
    assert_eq!(parse(&ver), Err(Drop::BadConnVersion));
    let mut ty = good.clone();
    ty[8] = 2;
    assert_eq!(parse(&ty), Err(Drop::BadConnType));
    let mut v = good.clone();
    v[5] = 2;
    assert_eq!(parse(&v), Err(Drop::BadVersion));
}

/// A connection with one extra parameter of type `t` and `data`.
fn with_param(t: u8, data: &[u8]) -> Vec<u8> {
    let mut m = one(&v4("10.1.1.10", 1));
    m.extend_from_slice(&[t, data.len() as u8]);
    m.extend_from_slice(data);
    let conn = (36 + 2 + data.len()) as u16;
    m[10..12].copy_from_slice(&conn.to_be_bytes());
    while !m.len().is_multiple_of(4) {
        m.push(0);
    }
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

#[test]
fn parameters_optional_skipped_mandatory_refused_bogus_dropped() {
    let opt = parse(&with_param(0x40 | 0x20, &[1, 2, 3])).unwrap();
    assert_eq!(opt.conns.len(), 1, "an optional parameter of unknown type is skipped");
    let mand = parse(&with_param(0x20, &[1, 2, 3])).unwrap();
    assert!(mand.conns.is_empty());
    assert_eq!(mand.skipped, vec![Skip::UnknownMandatoryParam(0x20)]);
    // 0x80 without the optional bit is mandatory to a kernel: rlvs never
    // sends it, and reads it as the kernel does.
    assert_eq!(parse(&with_param(0x80 | 0x10, &[1])).unwrap().skipped.len(), 1);
    assert_eq!(parse(&with_param(param::SEQ_DATA, &[0; 10])), Err(Drop::BadParam));
    assert_eq!(parse(&with_param(param::FNAT_LOCAL, &[0; 5])), Err(Drop::BadParam));
    let mut zero = with_param(0x40 | 0x20, &[9]);
    zero[8 + 37] = 0;
    assert_eq!(parse(&zero), Err(Drop::BadParam));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let seed = one(&v4("10.1.1.10", 1));
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..200_000 {
        let mut m = seed.clone();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        if next() % 3 == 0 {
            m.truncate((next() as usize) % (m.len() + 1));
        }
        let _ = parse(&m);
    }
}

#[test]
fn control_messages_are_rlvs_only_and_a_kernel_reader_drops_them() {
    for k in [Control::ResyncRequest, Control::ResyncDone] {
        let b = control(k, 9);
        assert_eq!(control_of(&b), Some((k, 9)));
        // What the kernel checks first: the size field against the length.
        assert_eq!(parse(&b), Err(Drop::SizeMismatch));
    }
    assert_eq!(control_of(&one(&v4("10.1.1.10", 1))), None);
    let mut bad = control(Control::ResyncDone, 1);
    bad[8] = 7;
    assert_eq!(control_of(&bad), None);
}
