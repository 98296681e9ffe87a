"""The benchmark driver behind `make bench`: starts the HTTP floor, lossd and
the FastAPI + PyTorch peer on loopback, runs the four workloads of the
performance issue and writes one table, build/bench/report.md, with every
figure and the ratios lossd/floor and lossd/peer (plus report.png when
gnuplot is present).

  (a) small requests with wrk at 16 connections: requests/s, p99 and
      server CPU per request, each the median of five interleaved rounds;
      also on the floor running lossd's request path (floor --path), which
      splits lossd's gap to the floor into the request path and lossd's
      own HTTP layer;
  (b) large batches: median end-to-end latency over several runs, with
      lossd's Server-Timing breakdown (parse, queue, compute, encode);
  (c) the core micro-benchmark (bench/core_bench.c), ns per input element,
      the best of seven passes over every case (three with --quick);
  (d) lossd's peak RSS while serving one 1000x1000 request, and its RSS
      after 100 more;
  (e) lossd's request path without HTTP (bench/handler_bench.c): parse,
      compute and encode of each body, single thread;
  plus the parser micro-benchmark (bench/parse_bench.c) when it is built.

Usage: /usr/bin/python3 bench/run.py [--quick] [--skip a,b,c,d,e]
Everything runs on 127.0.0.1 and stops by itself; a server that does not
start is reported as n/a rather than stopping the rest.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
SMALL = ["softmax_8x10", "triplet_8x16", "kl_8x10"]
LARGE = ["softmax_256x1000", "softmax_1000x1000", "triplet_4096x128"]
SERVERS = ["floor", "floor_path", "lossd", "peer"]
# floor_path (the floor running lossd's request path, floor.c --path) only
# takes part in (a), where it splits lossd's gap to the floor.
LARGE_SERVERS = ("floor", "lossd", "peer")
TIMING_KEYS = ["parse", "queue", "compute", "encode"]


def log(msg):
    print("bench: " + msg, flush=True)


def loss_of(workload):
    return workload.split("_")[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- servers ---------------------------------------------------------------

class Server:
    """One server process (group) on a free loopback port."""

    def __init__(self, name, argv_fn, out_dir, env=None):
        self.name, self.port = name, free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(out_dir, name + ".log")
        self.argv = argv_fn(self.port)
        self.env, self.proc = env, None

    def start(self, bodies, timeout=90):
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                self.argv, stdout=logf, stderr=logf, cwd=ROOT, env=self.env,
                start_new_session=True)
        body = read(os.path.join(bodies, "softmax_8x10.json"))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if post(self.url + "/loss/softmax", body)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        log("%s did not start (see %s)" % (self.name, self.log_path))
        self.stop()
        return False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self):
        """User + system CPU time of every process of the server's session
        (the peer's uvicorn workers included), from /proc."""
        tick, total = os.sysconf("SC_CLK_TCK"), 0
        for pid in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError, ValueError):
                continue
            if pid.isdigit() and int(fields[3]) == self.proc.pid:
                total += int(fields[11]) + int(fields[12])
        return total / tick


def make_server(name, args, out_dir):
    if name == "floor":
        return Server(name, lambda p: [args.floor, "--port", str(p)],
                      out_dir)
    if name == "floor_path":
        return Server(name, lambda p: [args.floor, "--port", str(p),
                                       "--path"], out_dir)
    if name == "lossd":
        return Server(name, lambda p: [
            args.lossd, "--host", "127.0.0.1", "--port", str(p),
            "--log-format", "text"], out_dir)
    return Server(name, lambda p: [
        PYTHON, "-m", "uvicorn", "peer:app", "--app-dir",
        os.path.join(ROOT, "bench"), "--host", "127.0.0.1", "--port", str(p),
        "--workers", "2", "--log-level", "warning", "--no-access-log"],
        out_dir)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def post(url, body):
    req = urllib.request.Request(url, data=body, headers={
        "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---- (a) small requests ----------------------------------------------------

def wrk(url, body_path, seconds):
    env = dict(os.environ, BODY=body_path)
    out = subprocess.run(
        ["wrk", "-t2", "-c16", "-d%ds" % seconds, "--timeout", "10s", "-s",
         os.path.join(ROOT, "bench", "post.lua"), url],
        env=env, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"RESULT (.*)", out.stdout)
    if m is None:
        raise RuntimeError("wrk: " + out.stdout + out.stderr)
    r = {k: int(v) for k, v in
         (kv.split("=") for kv in m.group(1).split())}
    return {"rps": r["requests"] / (r["duration_us"] / 1e6),
            "requests": r["requests"],
            "p99_ms": r["p99_us"] / 1e3, "p50_ms": r["p50_us"] / 1e3,
            "bad": r["errors"] + r["non2xx"]}


def wrk_round(s, url, path, seconds):
    """One wrk run on server s, with the server's CPU time per request:
    what it costs, apart from how the two cores are shared with wrk."""
    cpu = s.cpu_seconds()
    r = wrk(url, path, seconds)
    r["cpu_us"] = (s.cpu_seconds() - cpu) * 1e6 / max(r["requests"], 1)
    return r


def small_summary(rounds):
    """Each figure is its median over the rounds."""
    r = {k: statistics.median(x[k] for x in rounds)
         for k in ("rps", "p99_ms", "p50_ms", "cpu_us")}
    r["bad"] = sum(x["bad"] for x in rounds)
    r["rounds"] = [x["rps"] for x in rounds]
    return r


def workload_a(servers, bodies, seconds, rounds):
    """Each round runs wrk on every server in turn, so that other load on
    the machine, which moved the floor's rate by up to 1.5x between runs,
    falls on all of them alike."""
    res = {}
    live = [s for s in servers.values() if s.running()]
    for w in SMALL:
        path = os.path.join(bodies, w + ".json")
        url = {s.name: "%s/loss/%s" % (s.url, loss_of(w)) for s in live}
        got = {s.name: [] for s in live}
        for s in live:
            wrk(url[s.name], path, 1)
        for _ in range(rounds):
            for s in live:
                got[s.name].append(wrk_round(s, url[s.name], path, seconds))
        for s in live:
            res[(w, s.name)] = r = small_summary(got[s.name])
            log("(a) %-14s %-10s %9.0f req/s  p99 %7.2f ms  cpu %6.1f us/req"
                "  rounds %s%s" % (
                    w, s.name, r["rps"], r["p99_ms"], r["cpu_us"],
                    " ".join("%.0f" % x for x in r["rounds"]),
                    "  %d errors" % r["bad"] if r["bad"] else ""))
    return res


# ---- (b) large batches -----------------------------------------------------

def curl_once(url, body_path, out_path):
    hdr = out_path + ".headers"
    out = subprocess.run(
        ["curl", "-s", "-o", out_path, "-D", hdr, "-H", "Expect:", "-H",
         "Content-Type: application/json", "--data-binary", "@" + body_path,
         "-w", "%{http_code} %{time_total}", url],
        capture_output=True, text=True, timeout=300)
    code, total = out.stdout.split()
    timing = {}
    with open(hdr) as f:
        for line in f:
            if line.lower().startswith("server-timing:"):
                for part in line.split(":", 1)[1].split(","):
                    m = re.match(r"\s*(\w+);dur=([0-9.]+)", part)
                    if m:
                        timing[m.group(1)] = float(m.group(2))
    return int(code), float(total) * 1e3, timing


def large_summary(times, timings, codes, out_path):
    r = {"ms": statistics.median(times), "codes": sorted(codes),
         "bytes_out": os.path.getsize(out_path)}
    for k in TIMING_KEYS:
        vals = [t[k] for t in timings if k in t]
        if vals:
            r[k] = statistics.median(vals)
    return r


def workload_b(servers, bodies, out_dir, runs):
    """Each run sends the body to every server in turn, so that other load
    on the machine falls on all of them alike."""
    res = {}
    live = [s for s in servers.values()
            if s.running() and s.name in LARGE_SERVERS]
    for w in LARGE:
        path = os.path.join(bodies, w + ".json")
        url = {s.name: "%s/loss/%s" % (s.url, loss_of(w)) for s in live}
        out = {s.name: os.path.join(out_dir, "resp-%s-%s.json" % (s.name, w))
               for s in live}
        got = {s.name: ([], [], set()) for s in live}
        for s in live:
            curl_once(url[s.name], path, out[s.name])
        for _ in range(runs):
            for s in live:
                code, ms, timing = curl_once(url[s.name], path, out[s.name])
                got[s.name][0].append(ms)
                got[s.name][1].append(timing)
                got[s.name][2].add(code)
        for s in live:
            res[(w, s.name)] = r = large_summary(*got[s.name], out[s.name])
            extra = " ".join("%s %.1f" % (k, r[k]) for k in TIMING_KEYS
                             if k in r)
            log("(b) %-17s %-5s median %8.1f ms  status %s  %s" % (
                w, s.name, r["ms"], r["codes"], extra))
    return res


def agreement(out_dir, workloads):
    """lossd's and the peer's loss on the same body, relative difference."""
    res = {}
    for w in workloads:
        try:
            a = json.loads(read(os.path.join(
                out_dir, "resp-lossd-%s.json" % w)))["loss"]
            b = json.loads(read(os.path.join(
                out_dir, "resp-peer-%s.json" % w)))["loss"]
            res[w] = abs(a - b) / max(abs(b), 1e-300)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return res


def small_responses(servers, bodies, out_dir):
    for w in SMALL:
        for name in ("lossd", "peer"):
            s = servers.get(name)
            if s is not None and s.running():
                code, body = post("%s/loss/%s" % (s.url, loss_of(w)),
                                  read(os.path.join(bodies, w + ".json")))
                with open(os.path.join(out_dir, "resp-%s-%s.json" % (
                        name, w)), "wb") as f:
                    f.write(body)


# ---- (c) core --------------------------------------------------------------

def workload_c(core_bench, budget_ms, passes):
    """Every case is timed once in each of `passes` passes over all of them
    and keeps its best pass, with the median beside it.  A shared
    machine's speed can change for seconds at a time (on the one this was
    written on, libm's log took 5.1 or 9.8 ns a call, rarely anything
    between, changing about once a second), so a single pass can fall
    wholly in a slow spell; the best of several, a few seconds apart, is
    the code's own speed, and the median shows the spells."""
    if not os.path.exists(core_bench):
        return {}
    times = {}
    for _ in range(passes):
        out = subprocess.run([core_bench, str(budget_ms)],
                             capture_output=True, text=True, timeout=300,
                             check=True)
        for line in out.stdout.splitlines():
            if not line.startswith("#"):
                name, elems, ns_call, _ = line.split()
                times.setdefault(name, (int(elems), []))[1].append(
                    float(ns_call))
    res = {}
    for name, (elems, calls) in times.items():
        best, median = min(calls), statistics.median(calls)
        res[name] = {"elements": elems, "ms": best / 1e6,
                     "ns_per_element": best / elems,
                     "median_ns_per_element": median / elems}
        log("(c) %-45s %8.2f ns/element  median %8.2f" % (
            name, best / elems, median / elems))
    return res


# ---- (d) memory ------------------------------------------------------------

def proc_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def workload_d(args, bodies, out_dir, count):
    s = make_server("lossd", args, out_dir)
    if not os.path.exists(args.lossd) or not s.start(bodies):
        return {}
    w = "softmax_1000x1000"
    path = os.path.join(bodies, w + ".json")
    url = s.url + "/loss/softmax"
    sink = os.path.join(out_dir, "resp-rss.json")
    pid = s.proc.pid
    try:
        r = {"body_mb": os.path.getsize(path) / 2**20,
             "idle_mb": proc_kb(pid, "VmRSS") / 1024}
        curl_once(url, path, sink)
        r["peak_mb"] = proc_kb(pid, "VmHWM") / 1024
        r["after1_mb"] = proc_kb(pid, "VmRSS") / 1024
        xargs = "seq %d | xargs -P2 -I{} curl -s -o /dev/null -H Expect: " \
                "-H 'Content-Type: application/json' --data-binary @%s %s" % (
                    count, path, url)
        subprocess.run(xargs, shell=True, check=True, timeout=600)
        time.sleep(0.5)
        r["after100_mb"] = proc_kb(pid, "VmRSS") / 1024
        r["peak100_mb"] = proc_kb(pid, "VmHWM") / 1024
    finally:
        s.stop()
    log("(d) body %.1f MB: idle %.1f MB, peak %.1f MB, after 1 %.1f MB, "
        "after %d %.1f MB (peak %.1f MB)" % (
            r["body_mb"], r["idle_mb"], r["peak_mb"], r["after1_mb"], count,
            r["after100_mb"], r["peak100_mb"]))
    return r


def peer_rss(peer):
    """The largest peak RSS of the peer's worker processes, in MB."""
    if peer is None or not peer.running():
        return None
    out = subprocess.run(["pgrep", "-P", str(peer.proc.pid)],
                         capture_output=True, text=True)
    peaks = [proc_kb(int(p), "VmHWM") / 1024 for p in out.stdout.split()]
    return max(peaks) if peaks else None


# ---- (e) the request path without HTTP --------------------------------------

def workload_e(handler_bench, bodies, budget_ms):
    """srv_loss_run alone, single thread: us per request and its split."""
    if not os.path.exists(handler_bench):
        return {}
    out = subprocess.run([handler_bench, bodies, str(budget_ms)],
                         capture_output=True, text=True, timeout=300,
                         check=True)
    res = {}
    for line in out.stdout.splitlines():
        if line.startswith("#"):
            continue
        w, total, parse, compute, encode = line.split()
        res[w] = {"us": float(total), "parse": float(parse),
                  "compute": float(compute), "encode": float(encode)}
        log("(e) %-17s %10.1f us: parse %.1f compute %.1f encode %.1f" % (
            w, float(total), float(parse), float(compute), float(encode)))
    return res


# ---- parse micro-benchmark -------------------------------------------------

def workload_parse(parse_bench, bodies):
    if not os.path.exists(parse_bench):
        return {}
    path = os.path.join(bodies, "softmax_1000x1000.json")
    out = subprocess.run([parse_bench, path], capture_output=True, text=True,
                         timeout=300, check=True)
    res = {}
    for line in out.stdout.splitlines():
        if not line.startswith("#"):
            name, ms = line.split()[:2]
            res[name] = float(ms)
            log("(parse) %-28s %8.1f ms" % (name, float(ms)))
    return res


# ---- main ------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip", default="")
    args = ap.parse_args()
    out_dir = os.path.join(args.build, "bench")
    bodies = os.path.join(out_dir, "bodies")
    args.lossd = os.path.join(args.build, "lossd")
    args.floor = os.path.join(out_dir, "floor")
    skip = set(args.skip.split(","))
    seconds, rounds, runs, passes = ((1, 3, 3, 3) if args.quick
                                     else (3, 5, 5, 7))
    t0, load0 = time.time(), os.getloadavg()[0]
    subprocess.run([PYTHON, os.path.join(ROOT, "bench", "bodies.py"),
                    bodies], check=True)
    res = {"a": {}, "b": {}, "agree": {}, "rounds": rounds, "runs": runs,
           "passes": passes}
    servers = {}
    try:
        for name in SERVERS:
            s = make_server(name, args, out_dir)
            if name == "lossd" and not os.path.exists(args.lossd):
                log("no %s: lossd is reported as n/a" % args.lossd)
                continue
            if s.start(bodies):
                servers[name] = s
        if "a" not in skip:
            res["a"] = workload_a(servers, bodies, seconds, rounds)
        small_responses(servers, bodies, out_dir)
        if "b" not in skip:
            res["b"] = workload_b(servers, bodies, out_dir, runs)
        res["agree"] = agreement(out_dir, SMALL + LARGE)
        res["peer_rss"] = peer_rss(servers.get("peer"))
    finally:
        for s in servers.values():
            s.stop()
    res["c"] = workload_c(os.path.join(out_dir, "core_bench"), 100,
                          passes) \
        if "c" not in skip else {}
    res["d"] = workload_d(args, bodies, out_dir, 20 if args.quick else 100) \
        if "d" not in skip else {}
    res["e"] = workload_e(os.path.join(out_dir, "handler_bench"), bodies,
                          300 if args.quick else 1000) \
        if "e" not in skip else {}
    res["parse"] = workload_parse(os.path.join(out_dir, "parse_bench"),
                                  bodies)
    res["seconds"] = time.time() - t0
    res["load"] = (load0, os.getloadavg()[0])
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import report
    report.write(res, out_dir)
    log("report: %s (%.0f s)" % (os.path.join(out_dir, "report.md"),
                                 res["seconds"]))


if __name__ == "__main__":
    main()
