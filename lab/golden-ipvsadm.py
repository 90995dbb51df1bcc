#!/usr/bin/env python3
"""Runs INSIDE the lab guest (../shared/lab, real ipvsadm 1.31 on Debian's
kernel). Replays the project's .cases files against the real ipvsadm, each
in a fresh network namespace, and writes what it printed as JSON lines to
/labio/<name>.jsonl. Driven by lab/capture-ipvsadm-golden.sh."""
import json, shlex, subprocess, sys

SEED = [
    "-A -t 10.0.0.100:80 -s rr",
    "-a -t 10.0.0.100:80 -r 10.1.1.244 -g -w 1",
    "-a -t 10.0.0.100:80 -r 10.1.1.245 -g -w 1",
]

def run(ns, args, stdin=None):
    p = subprocess.run(["ip", "netns", "exec", ns, "ipvsadm", *args],
                       capture_output=True, text=True, input=stdin)
    r = {"args": args, "rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
    if stdin is not None:
        r["stdin"] = stdin
    return r

def cases(path):
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            yield shlex.split(line)

def main(cases_dir, out_dir):
    subprocess.run(["modprobe", "ip_vs"], check=True)
    for name, setup in (("listing", []), ("errors", SEED), ("face", [])):
        ns = "golden-" + name
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        with open(f"{out_dir}/{name}.jsonl", "w") as out:
            for s in setup:
                r = run(ns, s.split())
                assert r["rc"] == 0, r
            if setup:
                out.write(json.dumps({"setup": SEED, "listing": run(ns, ["-Ln"])}) + "\n")
            prev = ""
            for args in cases(f"{cases_dir}/{name}.cases"):
                stdin = None
                if args[-1:] == ["<prev"]:
                    args, stdin = args[:-1], prev
                r = run(ns, args, stdin)
                prev = r["stdout"]
                out.write(json.dumps(r) + "\n")
            out.write(json.dumps({"final": run(ns, ["-Ln"])}) + "\n")
        subprocess.run(["ip", "netns", "del", ns])
    print("golden capture done")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
