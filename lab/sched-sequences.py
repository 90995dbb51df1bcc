#!/usr/bin/env python3
"""Runs INSIDE the lab guest (real kernel IPVS). For each scenario of
tests/golden/sched/scenarios.txt: a fresh director namespace with the UDP
service 10.0.0.100:53 (DR), a client namespace on a veth link, the
scenario's ipvsadm commands, and for each "send N" N datagrams from fresh
source ports, one at a time. Which real server the kernel picked for each
is read back from `ipvsadm -Lnc`. Writes /labio/kernel-picks.txt."""
import socket, subprocess, sys, time

VIP = "10.0.0.100"

def sh(*a, check=True):
    return subprocess.run(a, check=check, capture_output=True, text=True).stdout

def scenarios(path):
    out = []
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("scenario "):
            out.append((line.split()[1], []))
        else:
            out[-1][1].append(line)
    return out

def picks(ns):
    out = sh("ip", "netns", "exec", ns, "ipvsadm", "-Lnc")
    m = {}
    for l in out.splitlines()[2:]:
        f = l.split()
        m[int(f[3].rsplit(":", 1)[1])] = f[5].rsplit(":", 1)[0]
    return m

def main(src, out_dir):
    subprocess.run(["modprobe", "ip_vs"], check=True)
    for s in ("rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "dh", "sh", "mh", "lblc", "lblcr"):
        subprocess.run(["modprobe", "ip_vs_" + s], check=False)
    out = open(f"{out_dir}/kernel-picks.txt", "w")
    port = 20000
    for name, steps in scenarios(src):
        d, c = "sq-d", "sq-c"
        for ns in (d, c):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", d, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", c)
        sh("ip", "-n", d, "addr", "add", "10.1.1.243/24", "dev", "eth0")
        sh("ip", "-n", c, "addr", "add", "10.1.1.10/24", "dev", "eth0")
        sh("ip", "-n", d, "link", "set", "eth0", "up")
        sh("ip", "-n", c, "link", "set", "eth0", "up")
        sh("ip", "-n", d, "addr", "add", VIP + "/32", "dev", "lo")
        sh("ip", "-n", c, "route", "add", VIP, "dev", "eth0")
        sh("ip", "-n", d, "route", "add", "10.1.2.0/24", "dev", "eth0")
        seq = []
        for st in steps:
            f = st.split()
            if f[0] in ("send", "clients"):
                for i in range(int(f[1])):
                    port += 1
                    src = "10.1.1.10" if f[0] == "send" else f"10.1.2.{i + 1}"
                    if f[0] == "clients":
                        sh("ip", "-n", c, "addr", "add", src + "/32", "dev", "eth0", check=False)
                    sh("ip", "netns", "exec", c, "python3", "-c",
                       f"import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                       f"s.bind(('{src}',{port}));s.sendto(b'x',('{VIP}',53))")
                    time.sleep(0.02)
                    seq.append(picks(d).get(port, "-"))
            else:
                args = [f[0], "-u", VIP + ":53"] + f[1:]
                if f[0] in ("-A", "-E") and "-s" not in f:
                    args += []
                sh("ip", "netns", "exec", d, "ipvsadm", *args)
        out.write(f"{name} {' '.join(seq)}\n")
        for ns in (d, c):
            sh("ip", "netns", "del", ns)
    out.close()
    print("sched capture done")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
