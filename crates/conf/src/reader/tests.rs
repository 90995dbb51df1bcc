use super::*;

fn read(text: &str, id: Option<&str>) -> (Vec<String>, Vec<Diag>) {
    let mut diags = Vec::new();
    let mut r = Reader::new(Options { config_id: id.map(str::to_string) }, &mut diags);
    r.read_text(Path::new("/etc/keepalived/k.conf"), text);
    let lines =
        r.finish().iter().map(|l| l.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join("|")).collect();
    (lines, diags)
}

#[test]
fn braces_are_lines_of_their_own_and_comments_go() {
    let (l, d) = read("vrrp_instance VI_1 { # the instance\n  state MASTER } ! done\n\"a { b\" {\n", None);
    assert_eq!(l, ["vrrp_instance|VI_1", "{", "state|MASTER", "}", "a { b", "{"]);
    assert!(d.is_empty());
}

#[test]
fn columns_point_at_each_word() {
    let mut diags = Vec::new();
    let mut r = Reader::new(Options::default(), &mut diags);
    r.read_text(Path::new("k.conf"), "\n    weight 1   ###Backend\n");
    let lines = r.finish();
    assert_eq!(lines[0].words[0].pos.to_string(), "k.conf:2:5");
    assert_eq!(lines[0].words[1].pos.to_string(), "k.conf:2:12");
}

#[test]
fn escaped_comment_characters_and_quotes() {
    let (l, _) = read("script \"/bin/check #1\" \\#x\n", None);
    assert_eq!(l, ["script|/bin/check #1|#x"]);
}

#[test]
fn conditionals_follow_the_config_id() {
    let text = "@main router_id main_router\n@backup router_id backup_router\n@^main x 1\n";
    assert_eq!(read(text, Some("main")).0, ["router_id|main_router"]);
    assert_eq!(read(text, Some("backup")).0, ["router_id|backup_router", "x|1"]);
    assert_eq!(read(text, None).0, ["x|1"]);
}

#[test]
fn definitions_expand_at_use_time_and_recursively() {
    let text = "$ADDRESS_BASE=10.2.${SUB}\n$SUB=0\n${ADDRESS_BASE}.100/32\n$SUB=10\n${ADDRESS_BASE}.100/32\n$P=240\npriority $P\n";
    assert_eq!(read(text, None).0, ["10.2.0.100/32", "10.2.10.100/32", "priority|240"]);
}

#[test]
fn undefined_parameters_stay() {
    assert_eq!(read("$A=1\nscript \"echo ${UNDEF} $HOME\"\n", None).0, ["script|echo ${UNDEF} $HOME"]);
}

#[test]
fn multiline_definitions_expand_to_lines() {
    let text = "$VI= \\\nvrrp_instance VI_${N} { \\\n  priority 1${N} \\\n}\n$N=0\n$VI\n$N=1\n$VI\n";
    assert_eq!(
        read(text, None).0,
        ["vrrp_instance|VI_0", "{", "priority|10", "}", "vrrp_instance|VI_1", "{", "priority|11", "}"]
    );
}

#[test]
fn sequences_and_lists() {
    assert_eq!(read("~SEQ(S, 0, 2) ip 10.0.${S}.1\n", None).0, ["ip|10.0.0.1", "ip|10.0.1.1", "ip|10.0.2.1"]);
    assert_eq!(read("~SEQx(S, 0x90, 0x10, 0xb0) fe80::${S}\n", None).0, ["fe80::90", "fe80::a0", "fe80::b0"]);
    assert_eq!(read("~SEQ(S, 3) n${S}\n", None).0, ["n1", "n2", "n3"]);
    assert_eq!(read("~LST({A, B}, {10,1},{20,4}) 192.168.${A}.${B}\n", None).0, ["192.168.10.1", "192.168.20.4"]);
    assert_eq!(read("~LST(A, 1, 2) ~SEQ(B, 5, 6) ${A}.${B}\n", None).0, ["1.5", "1.6", "2.5", "2.6"]);
    let (l, d) = read("~SEQ(S, 1, 0, 3) x\n", None);
    assert!(l.is_empty() && d[0].message.starts_with("Invalid ~SEQ"));
}

#[test]
fn hash_and_bang_definitions_are_literal() {
    assert_eq!(read("x a${_HASH}b${_BANG}c\n", None).0, ["x|a#b!c"]);
}

#[test]
fn self_reference_is_bounded() {
    let (l, d) = read("$A=$A x\n$A\n", None);
    assert!(l.is_empty());
    assert!(d[0].message.contains("nested too deeply"));
}

#[test]
fn includes_are_relative_to_the_including_file() {
    let dir = std::env::temp_dir().join(format!("rlvs-conf-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(dir.join("conf.d/b.conf"), "b 2\n").unwrap();
    std::fs::write(dir.join("conf.d/a.conf"), "a 1\n").unwrap();
    std::fs::write(dir.join("main.conf"), "include conf.d/*.conf\nincludeb missing/*.conf\nc 3\n").unwrap();
    let mut diags = Vec::new();
    let mut r = Reader::new(Options::default(), &mut diags);
    assert!(r.read_path(&dir.join("main.conf")));
    let lines = r.finish();
    let texts: Vec<&str> = lines.iter().map(|l| l.words[0].text.as_str()).collect();
    assert_eq!(texts, ["a", "b", "c"]);
    assert!(lines[0].pos().file.ends_with("conf.d/a.conf"));
    assert!(diags[0].message.contains("Config files missing"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let len = (seed % 200) as usize;
        let mut s = String::new();
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let alphabet = b"ab $@^~{}()\"\\#!=,\n\t01SEQLSTx_";
            s.push(alphabet[(seed % alphabet.len() as u64) as usize] as char);
        }
        read(&s, Some("a"));
    }
}
