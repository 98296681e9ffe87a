#!/usr/bin/python3
"""HTTP client for docker/test-image.sh: checks a running lossd (or the nginx
in front of several) with the committed reference vectors, drives bounded
load, and holds one large request open across a shutdown.  Standard library
only; every request goes to the base URL given (a loopback address).

  test_client.py families BASE VECTORS_DIR
  test_client.py load BASE COUNT CONCURRENCY OUT.json
  test_client.py slow BASE GO_FILE        (prints "half-sent", waits for GO_FILE)
  test_client.py stall BASE               (sends half a body, never the rest)
  test_client.py tally NGINX_LOG NAME=IP... (requests per replica, retries)
  test_client.py inspect < IMAGE_INSPECT.json   (the image's metadata)
"""
import glob
import http.client
import json
import math
import os
import random
import sys
import threading
import time
import urllib.parse


def connect(base, timeout=60):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port or 80,
                                      timeout=timeout)


def post(base, name, body, timeout=60):
    """POSTs a JSON body; returns (status, parsed body or None)."""
    conn = connect(base, timeout)
    try:
        data = json.dumps(body).encode()
        conn.request("POST", "/loss/" + name, data,
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, None


def get(base, path):
    conn = connect(base, 10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def close(a, b, rtol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)


def first_cases(vectors_dir):
    """For each loss, its first reference case and its first error case."""
    ok, bad = {}, {}
    for path in sorted(glob.glob(os.path.join(vectors_dir, "*.json"))):
        with open(path) as f:
            for case in json.load(f)["cases"]:
                into = bad if "error" in case else ok
                into.setdefault(case["loss"], case)
    return ok, bad


def cmd_families(base, vectors_dir):
    """One reference request and one invalid request per loss; every loss
    the daemon lists must be covered."""
    status, root = get(base, "/")
    if status != 200:
        sys.exit("GET / answered %d" % status)
    ok, bad = first_cases(vectors_dir)
    failures = []
    for name in root["losses"]:
        case = ok.get(name)
        if case is None:
            failures.append("%s: no reference case" % name)
            continue
        body = dict(case["request"], precision="float64")
        status, got = post(base, name, body)
        want = case["expected"]["loss"]
        if status != 200 or not close(got.get("loss"), want):
            failures.append("%s: %d %s, want loss %r" % (
                name, status, json.dumps(got)[:200], want))
        if name in bad:
            err = bad[name]["error"]
            status, got = post(base, name, bad[name]["request"])
            code = (got or {}).get("error", {}).get("code")
            if status != err["status"] or code != err["code"]:
                failures.append("%s error case: %d %s, want %d %s" % (
                    name, status, code, err["status"], err["code"]))
    for f in failures:
        print("FAIL", f)
    print("families: %d losses, %d failures"
          % (len(root["losses"]), len(failures)))
    sys.exit(1 if failures else 0)


def load_body(seed):
    """A mined-triplet request that takes tens of milliseconds to compute."""
    rnd = random.Random(seed)
    n, d = 160, 16
    return {"embeddings": [[rnd.gauss(0, 1) for _ in range(d)]
                           for _ in range(n)],
            "labels": [rnd.randrange(6) for _ in range(n)],
            "mining": "batch_all", "per_sample": False,
            "gradients": False, "precision": "float64"}


def cmd_load(base, count, concurrency, out):
    """COUNT requests from CONCURRENCY threads; writes each one's status and
    whether its loss matched the first answer for the same body."""
    bodies = [load_body(s) for s in range(4)]
    results = [None] * count
    lock = threading.Lock()
    next_i = [0]
    ref = {}

    def worker():
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= count:
                return
            k = i % len(bodies)
            t0 = time.time()
            try:
                status, got = post(base, "triplet", bodies[k])
                loss = (got or {}).get("loss")
            except OSError as e:
                status, loss = 0, str(e)
            results[i] = {"i": i, "t": t0, "dt": time.time() - t0,
                          "status": status, "body": k, "loss": loss}

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if r["status"] == 200:
            ref.setdefault(r["body"], r["loss"])
            r["correct"] = close(r["loss"], ref[r["body"]], 1e-12)
    statuses = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    wrong = sum(1 for r in results if r["status"] == 200 and not r["correct"])
    with open(out, "w") as f:
        json.dump({"statuses": statuses, "wrong": wrong,
                   "results": results}, f)
    print("load: %d requests, statuses %s, %d wrong answers"
          % (count, statuses, wrong))
    sys.exit(0 if statuses == {"200": count} and wrong == 0 else 1)


def big_request():
    """About 8 MB of softmax logits, and the loss the daemon must return."""
    rnd = random.Random(7)
    n, k = 4000, 100
    logits = [[round(rnd.gauss(0, 3), 6) for _ in range(k)] for _ in range(n)]
    labels = [rnd.randrange(k) for _ in range(n)]
    total = 0.0
    for row, y in zip(logits, labels):
        m = max(row)
        total += m + math.log(sum(math.exp(v - m) for v in row)) - row[y]
    body = {"logits": logits, "labels": labels, "precision": "float64",
            "per_sample": False, "gradients": False}
    return json.dumps(body).encode(), total / n


def send_half(base, data):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=120)
    conn.putrequest("POST", "/loss/softmax")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders()
    conn.send(data[:len(data) // 2])
    print("half-sent", flush=True)
    return conn


def cmd_slow(base, go_file):
    """Sends half of a large body, waits until GO_FILE exists (the test
    stops the daemon meanwhile), sends the rest and checks the answer."""
    data, want = big_request()
    conn = send_half(base, data)
    deadline = time.time() + 60
    while not os.path.exists(go_file) and time.time() < deadline:
        time.sleep(0.05)
    conn.send(data[len(data) // 2:])
    resp = conn.getresponse()
    got = json.loads(resp.read())
    good = resp.status == 200 and close(got.get("loss"), want, 1e-9)
    print("slow: %d loss %r want %r" % (resp.status, got.get("loss"), want))
    sys.exit(0 if good else 1)


def cmd_stall(base):
    """Sends half of a large body and then nothing, until the peer closes."""
    data, _ = big_request()
    conn = send_half(base, data)
    try:
        resp = conn.getresponse()
        print("stall: answered %d" % resp.status)
    except (OSError, http.client.HTTPException) as e:
        print("stall: connection closed (%s)" % type(e).__name__)


def cmd_tally(log_path, *replicas):
    """Counts the POSTs in an nginx access log (docker/nginx.conf's format)
    by the replica that answered, and those that were retried on another
    replica.  Fails unless every named replica answered some."""
    names = dict(r.split("=", 1)[::-1] for r in replicas)
    served = {n: 0 for n in names.values()}
    retried, failed, first = 0, 0, {}
    with open(log_path, errors="replace") as f:
        for line in f:
            if '"POST /loss/' not in line or " upstream=" not in line:
                continue
            addrs = line.split(" upstream=", 1)[1].split(" upstream_status=")[0]
            codes = line.split(" upstream_status=", 1)[1].split(" rt=")[0]
            tries = [a.strip() for a in addrs.split(",")]
            last = tries[-1].rsplit(":", 1)[0]
            served[names.get(last, last)] = served.get(names.get(last, last), 0) + 1
            if len(tries) > 1:
                retried += 1
                code = codes.split(",")[0].strip()
                first[code] = first.get(code, 0) + 1
            failed += '" 200 ' not in line
    print("tally: served %s; %d retried on another replica (first answers %s);"
          " %d not 200" % (json.dumps(served, sort_keys=True), retried,
                           json.dumps(first, sort_keys=True), failed))
    sys.exit(0 if all(served[n] > 0 for n in names.values()) else 1)


def find_key(obj, names):
    """The first value under any of names, searching nested dicts."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in names and v:
                return v
        for v in obj.values():
            found = find_key(v, names)
            if found is not None:
                return found
    return None


def cmd_inspect():
    """Checks `docker|podman image inspect` output: a numeric non-root
    user, port 8080, an exec-form entrypoint and a --check health check."""
    info = json.load(sys.stdin)
    info = info[0] if isinstance(info, list) else info
    config = info.get("Config", {})
    user = config.get("User", "")
    health = find_key(info, ("Healthcheck", "HealthCheck")) or {}
    checks = {
        "numeric non-root user": all(p.isdigit() and int(p) > 0
                                     for p in user.split(":")) and user != "",
        "EXPOSE 8080": "8080/tcp" in (config.get("ExposedPorts") or {}),
        "exec-form ENTRYPOINT": config.get("Entrypoint") == [
            "/usr/local/bin/lossd"] and not config.get("Cmd"),
        "HEALTHCHECK lossd --check": "--check" in (health.get("Test") or []),
    }
    for what, good in checks.items():
        print("%s %s" % ("ok" if good else "FAIL", what))
    print("image size: %.1f MB (user %s)" % (info.get("Size", 0) / 1e6, user))
    sys.exit(0 if all(checks.values()) else 1)


def main(argv):
    cmds = {"families": (cmd_families, [str, str]),
            "load": (cmd_load, [str, int, int, str]),
            "slow": (cmd_slow, [str, str]),
            "stall": (cmd_stall, [str])}
    if len(argv) == 2 and argv[1] == "inspect":
        cmd_inspect()
    if len(argv) >= 3 and argv[1] == "tally":
        cmd_tally(*argv[2:])
    if len(argv) < 2 or argv[1] not in cmds:
        sys.exit(__doc__)
    fn, types = cmds[argv[1]]
    if len(argv) - 2 != len(types):
        sys.exit(__doc__)
    fn(*[t(a) for t, a in zip(types, argv[2:])])


if __name__ == "__main__":
    main(sys.argv)
