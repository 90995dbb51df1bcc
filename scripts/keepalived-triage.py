#!/usr/bin/env python3
"""Triage of keepalived 2.2.7's load-time checks against rlvs.

Lists every report_config_error call in keepalived's source (a checkout of
tag v2.2.7, given as the first argument), with its condition's place, its
severity and its message, and says whether rlvs makes the same check: a
row is "done" when rlvs's sources carry the message's fixed text, "n/a"
when the check belongs to a feature rlvs does not have (the reason is
given), "open" otherwise. Writes docs/KEEPALIVED_CHECKS.md.

    python3 scripts/keepalived-triage.py /path/to/keepalived-2.2.7
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RLVS_SOURCES = [os.path.join(ROOT, d) for d in ("crates/conf/src", "crates/rlvs/src")]

# Files (or parts of them) whose checks belong to features rlvs does not
# have: the keywords are read, and `-t` notes that they have no effect.
NOT_APPLICABLE = {
    "keepalived/bfd/": "BFD: not in rlvs (the keywords are noted by -t)",
    "keepalived/check/check_bfd.c": "BFD checker: not in rlvs",
    "keepalived/vrrp/vrrp_iproute.c": "virtual_routes / static_routes: not in rlvs (noted by -t)",
    "keepalived/vrrp/vrrp_iprule.c": "virtual_rules / static_rules: not in rlvs (noted by -t)",
    "keepalived/vrrp/vrrp_ip_rule_route_parser.c": "route and rule options: not in rlvs",
    "keepalived/trackers/track_file.c": "track_file: not in rlvs",
    "keepalived/vrrp/vrrp_track.c:track_process": "track_process: not in rlvs",
    "keepalived/vrrp/vrrp_vmac.c": "use_vmac / ipvlan: not in rlvs",
    "keepalived/vrrp/vrrp_firewall.c": "iptables / nftables VIP filtering: not in rlvs",
    "keepalived/core/snmp.c": "SNMP: not in rlvs",
    "keepalived/dbus/": "D-Bus: not in rlvs",
}

# Keyword handlers in shared parser files, by the feature they configure.
# Checks rlvs makes in its own words, or with the message built from
# parts (so the fixed text is not in its sources as one piece).
DONE = {
    "check_check_script_security": "crates/rlvs/src/verdict.rs (SECURITY VIOLATION, exit 6)",
    "check_vrrp_script_security": "crates/rlvs/src/verdict.rs (SECURITY VIOLATION, exit 6)",
    "lvs_timeouts:Invalid lvs_timeout": "build/global.rs lvs_timeouts (message built per option; corpus b76)",
    "lvs_timeouts:No value specified": "build/global.rs lvs_timeouts (message built per option)",
    "uthreshold_handler": "build/lvs/ (one arm for both thresholds; corpus b67)",
    "lthreshold_handler": "build/lvs/ (one arm for both thresholds; corpus b67)",
    "vrrp_garp_rep_handler": "build/global.rs at_least_one (corpus b80)",
    "vrrp_garp_refresh_rep_handler": "build/global.rs at_least_one (as vrrp_garp_master_repeat)",
    "vrrp_garp_interval_handler": "build/global.rs (one arm for both intervals; corpus b87)",
    "vrrp_gna_interval_handler": "build/global.rs (one arm for both intervals; corpus b87)",
    "vrrp_gnotify_backup_handler": "build/vrrp/ sync_group (one arm per script; corpus b94)",
    "vrrp_gnotify_master_handler": "build/vrrp/ sync_group (one arm per script; corpus b94)",
    "vrrp_gnotify_fault_handler": "build/vrrp/ sync_group (one arm per script; corpus b94)",
    "vrrp_gnotify_stop_handler": "build/vrrp/ sync_group (one arm per script; corpus b94)",
    "notify_up_handler": "build/lvs/ real_server (names the server where keepalived prints (null); corpus b95)",
    "notify_down_handler": "build/lvs/ real_server (as notify_up)",
    "quorum_up_handler": "build/lvs/ virtual_server (names the server where keepalived prints (null); corpus b96)",
    "quorum_down_handler": "build/lvs/ virtual_server (as quorum_up)",
    "lvs_syncd_handler:Invalid lvs_sync_daemon": "build/global.rs lvs_sync_daemon (corpus b77, b109)",
    "lvs_syncd_handler:not multicast": "build/global.rs lvs_sync_daemon (corpus b109)",
    "lvs_syncd_handler:group - ignoring": "build/global.rs lvs_sync_daemon",
    "vrrp_notify_backup_handler": "build/vrrp/ instance notify arms (first kept; corpus c01)",
    "vrrp_notify_master_handler": "build/vrrp/ instance notify arms (first kept; corpus c01)",
    "vrrp_notify_fault_handler": "build/vrrp/ instance notify arms (first kept)",
    "vrrp_notify_stop_handler": "build/vrrp/ instance notify arms (first kept)",
    "vrrp_notify_deleted_handler": "build/vrrp/ instance notify arms (first kept)",
    "vrrp_notify_handler": "build/vrrp/ instance notify arms (first kept)",
    "vrrp_notify_master_rx_lower_pri": "build/vrrp/ instance notify arms (first kept)",
    "vrrp_strict_mode_handler": "build/vrrp/ instance yes/no arms (corpus c11)",
    "vrrp_skip_check_adv_addr_handler": "build/vrrp/ instance yes/no arms",
    "vrrp_lower_prio_no_advert_handler": "build/vrrp/ instance yes/no arms (corpus c15)",
    "vrrp_higher_prio_send_advert_handler": "build/vrrp/ instance yes/no arms",
    "vrrp_notify_priority_changes_handler": "build/vrrp/ instance yes/no arms",
    "vrrp_vscript_rise_handler": "build/vrrp/ vrrp_script rise/fall (corpus c10)",
    "vrrp_vscript_fall_handler": "build/vrrp/ vrrp_script rise/fall (corpus c10)",
    "min_length_handler": "build/lvs/ UDP_CHECK lengths (corpus c22)",
    "max_length_handler": "build/lvs/ UDP_CHECK lengths (corpus c22)",
    "vrrp_srcip_handler:malformed": "build/vrrp/ unicast_src_ip / mcast_src_ip (corpus c05)",
    "handle_ssl_file": "build/global.rs ssl (corpus c27)",
    "alpha_handler": "build/values.rs flag (one message per yes/no keyword; corpus e01)",
    "log_all_failures_handler": "build/values.rs flag (corpus e01)",
    "enable_sni_handler": "build/values.rs flag (corpus e08)",
    "fast_recovery_handler": "build/values.rs flag (corpus e08)",
    "rs_inhibit_handler": "build/values.rs flag (corpus e08)",
    "rs_alpha_handler": "build/values.rs flag (corpus e08)",
    "checker_log_all_failures_handler": "build/values.rs flag (corpus f10)",
    "vrrp_min_garp_handler": "build/values.rs flag (corpus f10)",
    "vrrp_notify_priority_changes": "build/values.rs flag (corpus f10)",
    "rs_init_notifies_handler": "build/values.rs flag (corpus f10)",
    "pgr_handler:Invalid IPv": "build/lvs/ persistence_granularity (family in the message; corpus e10)",
    "lvs_syncd_handler:No value specified for lvs_sync_daemon": "build/global.rs lvs_sync_daemon (one arm per option; corpus f10, f11, f13)",
    "vrrp_lvs_syncd_handler:Please use global": "build/vrrp/ lvs_sync_daemon_interface (indent computed; corpus f11, f12)",
    "alloc_track_if:weight without value": "build/vrrp/ track_weight (corpus f14)",
    "alloc_track_script:weight without value": "build/vrrp/ track_weight (corpus f14)",
    "add_seq:Invalid ~SEQ definition": "reader.rs sequence (corpus g01)",
    "add_seq:Invalid ~SEQ values": "reader.rs sequence (corpus g01)",
    "add_seq:~SEQx is only valid": "reader.rs sequence (corpus g01)",
    "add_lst": "reader.rs sequence (corpus g01)",
    "read_line:Invalid ~SEQ specification": "reader.rs sequence (`Invalid {what} specification`; corpus g01)",
    "read_line:Invalid ~LST specification": "reader.rs sequence (corpus g01)",
    "alloc_value_block": "build/mod.rs value_block (corpus g02)",
    "alloc_strvec_quoted_escaped": "reader.rs: rlvs reports the unterminated quote; keepalived 2.2.7 crashes on it under -t (corpus b37, a listed divergence)",
    "check_conf_file:Unable to read": "reader.rs load: rlvs says it cannot read the file and why (exit 1, as keepalived's FILE_NOT_FOUND)",
    "check_conf_file:Unable to find": "reader.rs load: as above",
    "read_unsigned64_func": "build/values.rs unsigned (one reader for every width; its range message)",
}

# Limits of keepalived's own machinery, not checks of what a file means.
OWN_LIMITS = {
    "add_seq:parameter strings too long": "keepalived's fixed ~SEQ buffer; rlvs has no such buffer",
    "check_conf_file:multiple configuration file matches": "keepalived takes a glob for -f; rlvs takes one path",
}

# Checks keepalived 2.2.7 never makes when it loads a file (or never
# under -t): the reason is keepalived's own code path.
UNREACHABLE = {
    "pgr_handler:not solid": "inside `#if 0` in keepalived's source",
    "vrrp_complete_instance:Unicast peers are not supported": "tested before keepalived sets the unicast flag (corpus f03: no message)",
    "vrrp_complete_instance:Unicast instances must have": "chk_min_cfg has already refused every instance without an interface (corpus b85, f06)",
    "vrrp_complete_instance:Non link-local address required": "as above: an instance without an interface never gets here (corpus f06)",
    "vrrp_complete_instance:no interface for": "every instance has an interface by then (chk_min_cfg), and VIPs take it",
    "vrrp_complete_instance:Cannot have weighted track script": "an address owner's weighted scripts were dropped just before (\"ignoring tracked script ... due to address_owner\", done)",
    "vrrp_complete_instance:disabling ARP": "printed only with -D (detailed logging), not by -t",
    "set_vrrp_src_addr": "needs a source address set before from the interface: only on a reload, never at -t",
    "vrrp_complete_init:Unable to find vrrp instance": "after the point where -t returns (vrrp_complete_init returns early in a config test; corpus b33)",
    "vrrp_complete_init:is not used": "after the point where -t returns (corpus d01)",
    "c:is missing a parameter at word position": "this form is for word 0, which every line has; rlvs reports the other form (`after keyword`)",
    "add_seq:multiline definition": "its parameters always end with ')', and a multi-line definition is expanded only at the end of a line (corpus g05: `$TWO)` stays unexpanded, an invalid definition)",
    "disable_local_igmp_handler": "only on a kernel without the IGMP sysctl; Debian 12's kernels have it",
    "check_include": "only in a build without GLOB_ALTDIRFUNC; Debian's has it",
}

NA_MARKERS = [
    (re.compile(r"in this build|by this build|kernel doesn't support|Your kernel", re.I),
     "a limit of keepalived's build or kernel: rlvs has IPv6 and mixed families"),
    (re.compile(r"snmp", re.I), "SNMP: not in rlvs"),
    (re.compile(r"dbus", re.I), "D-Bus: not in rlvs"),
    (re.compile(r"vmac|ipvlan|macvlan", re.I), "use_vmac / ipvlan: not in rlvs"),
    (re.compile(r"iptables|ipset|nftables|nf_table|nf_chain", re.I), "firewall VIP filtering: not in rlvs"),
    (re.compile(r"track_process|process_monitor|vprocess", re.I), "track_process: not in rlvs"),
    (re.compile(r"track_file|vrrp_track_file|tfile", re.I), "track_file: not in rlvs"),
    (re.compile(r"\bbfd\b|_bfd", re.I), "BFD: not in rlvs"),
    (re.compile(r"smtp|email", re.I), "e-mail alerts: not sent by rlvs (the keywords are noted)"),
    (re.compile(r"realtime|rlimit|cpu_affinity|process_priority|no_swap|rt_priority|sched_rt", re.I),
     "process scheduling knobs: rlvs is one process (noted by -t)"),
    (re.compile(r"notify_fifo|fifo", re.I), "notify FIFOs: not in rlvs"),
    (re.compile(r"instance_name|net_namespace|namespace", re.I), "instances / namespaces options: not in rlvs"),
    (re.compile(r"checksum_compat|unicast_chksum", re.I), "unicast checksum compatibility: not in rlvs"),
    (re.compile(r"reload_time|reload_file|config_copy|config_save|tmp_config", re.I), "scheduled reloads: not in rlvs"),
    (re.compile(r"startup_script|shutdown_script", re.I), "startup/shutdown scripts: not in rlvs"),
    (re.compile(r"rcv_buf|rx_bufs|netlink_", re.I), "netlink buffer sizes: not used by rlvs"),
    (re.compile(r"random_seed|umask|child_wait|max_auto_priority|min_auto_priority", re.I),
     "process knobs: not in rlvs"),
    (re.compile(r"save_process_name|get_priority|process priority|Process name", re.I),
     "process names and priorities: rlvs is one process (noted by -t)"),
    (re.compile(r"instance_handler|data_use_instance", re.I), "instances / namespaces options: not in rlvs (noted by -t)"),
    (re.compile(r"start/shutdown scripts", re.I), "startup/shutdown scripts: not in rlvs (noted by -t)"),
    (re.compile(r"use_disk_copy|read_conf_copy", re.I), "keepalived's copy of the configuration for its children: rlvs keeps none"),
    (re.compile(r"tprocess|track process", re.I), "track_process: not in rlvs"),
    (re.compile(r"tracked file|track file", re.I), "track_file in VRRP: not in rlvs"),
    (re.compile(r"garp_group|garp group", re.I), "garp_group: not in rlvs (noted by -t)"),
    (re.compile(r"linkbeat", re.I), "linkbeat: rlvs follows link state by netlink only (noted by -t)"),
    (re.compile(r"vrf|VRF", re.I), "VRF: not in rlvs (noted by -t)"),
    (re.compile(r"track_group|track group", re.I), "static track groups: not in rlvs (noted by -t)"),
    (re.compile(r"Static address|Static route|static_", re.I), "static addresses and routes: not in rlvs (noted by -t)"),
    (re.compile(r"MAC address|xmit_base|already exists as a non|garp_extra_if|vmac_garp", re.I), "use_vmac: not in rlvs"),
    (re.compile(r"kernel_rx_buf_size", re.I), "socket buffer sizes: rlvs sizes its own (noted by -t)"),
    (re.compile(r"up/down delay|up_down_delay", re.I), "interface up/down delays: not in rlvs (noted by -t)"),
    (re.compile(r"include_check", re.I), "include_check (reload on change): not in rlvs (noted by -t)"),
    (re.compile(r"^%\.\*s$"), "messages relayed from keepalived's copy of the configuration: rlvs keeps none"),
]


def calls(src):
    """(file, line, severity, format, function) for every call."""
    out = []
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".c"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src)
            text = open(path, errors="replace").read()
            func = ""
            for m in re.finditer(r"^(\w[\w ]*\*?\s*)?(\w+)\(([^;{]*)\)\s*\n\{|(?<!\w)report_config_error\s*\(", text, re.M):
                if m.group(2):
                    func = m.group(2)
                    continue
                start = m.end()
                depth, i, in_str, args = 1, start, False, ""
                while i < len(text) and depth:
                    c = text[i]
                    if in_str:
                        if c == "\\":
                            args += text[i:i + 2]
                            i += 2
                            continue
                        if c == '"':
                            in_str = False
                    elif c == '"':
                        in_str = True
                    elif c == "(":
                        depth += 1
                    elif c == ")":
                        depth -= 1
                        if not depth:
                            break
                    args += c
                    i += 1
                line = text.count("\n", 0, m.start()) + 1
                if rel == "lib/parser.c" and func == "report_config_error":
                    continue
                sev = args.split(",", 1)[0].strip()
                fmt = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', args.split(",", 1)[1] if "," in args else ""))
                # Only the format: the literals before the first argument.
                rest = args.split(",", 1)[1] if "," in args else ""
                lits = []
                for part in re.split(r'("(?:[^"\\]|\\.)*")', rest):
                    if part.startswith('"'):
                        lits.append(part[1:-1])
                    elif part.strip() and part.strip() != "":
                        if "," in part:
                            break
                fmt = "".join(lits) if lits else fmt
                out.append((rel, line, sev, fmt, func))
    return sorted(out)


def fragments(fmt):
    """The fixed text of a format, in pieces worth searching for."""
    parts = re.split(r"%[-#0 +']*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t|L)?[diouxXeEfFgGcsp%]|%\" PRI\w+ \"|\\n", fmt)
    return [p.strip(" .:-") for p in parts if len(p.strip(" .:-")) >= 8]


def rlvs_text():
    chunks = []
    for d in RLVS_SOURCES:
        for dirpath, _, files in os.walk(d):
            for f in files:
                if f.endswith(".rs"):
                    chunks.append(open(os.path.join(dirpath, f)).read())
    return "\n".join(chunks)


def na_reason(rel, func, fmt):
    for prefix, why in NOT_APPLICABLE.items():
        if ":" in prefix:
            p, fn_part = prefix.split(":")
            if rel.startswith(p) and fn_part in func:
                return why
        elif rel.startswith(prefix):
            return why
    for rx, why in NA_MARKERS:
        if rx.search(func) or rx.search(fmt):
            return why
    return None


def main():
    src = sys.argv[1]
    rows = calls(src)
    ours = rlvs_text()
    table, counts = [], {"done": 0, "n/a": 0, "open": 0}
    for rel, line, sev, fmt, func in rows:
        frags = fragments(fmt)
        key = next((k for k in DONE if k == func or (k.startswith(func + ":") and k.split(":", 1)[1] in fmt)), None)
        own = next((k for k in OWN_LIMITS if k.startswith(func + ":") and k.split(":", 1)[1] in fmt), None)
        dead = next((k for k in UNREACHABLE if k == func or (k.startswith(func + ":") and k.split(":", 1)[1] in fmt)), None)
        if key:
            status, why = "done", DONE[key]
        elif dead:
            status, why = "n/a", "unreachable in 2.2.7: " + UNREACHABLE[dead]
        elif own:
            status, why = "n/a", OWN_LIMITS[own]
        elif frags and all(f in ours for f in frags):
            status, why = "done", "same message in rlvs"
        else:
            reason = na_reason(rel, func, fmt)
            status, why = ("n/a", reason) if reason else ("open", "not yet checked by rlvs")
        counts[status] += 1
        msg = fmt.replace("|", "\\|").replace("\\\"", '"')
        table.append(f"| `{rel}:{line}` | `{func}` | {sev.replace('CONFIG_', '')} | {msg} | {status} | {why} |")
    with open(os.path.join(ROOT, "docs/KEEPALIVED_CHECKS.md"), "w") as f:
        f.write("# keepalived 2.2.7's load-time checks, and rlvs's\n\n")
        f.write("Generated by `scripts/keepalived-triage.py` from keepalived's source (tag v2.2.7): every\n")
        f.write("`report_config_error` call, where it is (the function holds the condition), its severity,\n")
        f.write("its message, and whether rlvs makes the check. A row is **done** when rlvs reports the\n")
        f.write("same message (in keepalived's words, with rlvs's hint after them); **n/a** when the check\n")
        f.write("belongs to a feature rlvs does not have (why is given; `-t` notes those keywords as having\n")
        f.write("no effect), or keepalived 2.2.7 never reaches it when it loads a file (\"unreachable\", with\n")
        f.write("the code path that prevents it); **open** when rlvs does not make it yet. Severities: GENERAL_ERROR and\n")
        f.write("WARNING make `keepalived -t` exit 5, SECURITY_ERROR exit 6, FATAL stops keepalived.\n\n")
        f.write("The corpus test (`crates/rlvs/tests/keepalived_corpus.rs`, files and real keepalived's\n")
        f.write("verdicts in `tests/golden/keepalived/corpus/`) checks the verdicts themselves.\n\n")
        f.write(f"Totals: {len(rows)} checks; done {counts['done']}, n/a {counts['n/a']}, open {counts['open']}.\n\n")
        f.write("| Where | Function | Severity | Message | rlvs | Why |\n|---|---|---|---|---|---|\n")
        f.write("\n".join(table) + "\n")
    print(f"{len(rows)} checks: {counts}")


if __name__ == "__main__":
    main()
