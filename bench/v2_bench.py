"""The Open Inference Protocol's binary path against lossd's JSON path and
the FastAPI + PyTorch peer, part of `make bench`: softmax 1000x1000 and
triplet 4096x128 (the bodies of bench/bodies.py), each sent

  - as JSON to POST /loss/{name} (precision float32, as a client would);
  - through POST /v2/models/{name}/infer with every input as FP32 binary
    tensor data and every output asked for as FP32 binary data;
  - as JSON to the peer (when FastAPI and torch are installed);

median end-to-end latency over several runs on one kept-alive connection,
next to the floor the issue sets: the core's compute time (lossd's
Server-Timing "compute" of the v2 request) plus one memcpy of the request's
and the answer's tensors.  Writes build/bench/v2.md and prints it.

Usage: /usr/bin/python3 bench/v2_bench.py [--build build] [--quick]
"""
import argparse
import array
import http.client
import json
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bodies  # noqa: E402
import run  # noqa: E402

WORKLOADS = {"softmax_1000x1000": ("softmax", 1000, 1000, 4),
             "triplet_4096x128": ("triplet", 4096, 128, 5)}
INTEGER = {"labels"}


def v2_binary(request):
    """The v2 form of a /loss body: FP32 (INT64 labels) binary inputs,
    every output as binary FP32."""
    inputs, blobs = [], []
    for name, value in request.items():
        flat = [x for row in value for x in row] if isinstance(
            value[0], list) else value
        shape = [len(value), len(value[0])] if isinstance(
            value[0], list) else [len(value)]
        blob = array.array("q" if name in INTEGER else "f", flat).tobytes()
        if sys.byteorder != "little":
            raise SystemExit("v2_bench: needs a little-endian host")
        inputs.append({"name": name, "shape": shape,
                       "datatype": "INT64" if name in INTEGER else "FP32",
                       "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    head = json.dumps({"parameters": {"binary_data_output": True},
                       "inputs": inputs}).encode()
    return head, b"".join(blobs)


def timed_post(conn, path, body, headers):
    t = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    dt = time.perf_counter() - t
    if r.status != 200:
        raise SystemExit("v2_bench: %s answered %d: %s" % (
            path, r.status, data[:300]))
    return dt, r, data


def median_post(port, path, body, headers, runs):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    times, last = [], None
    for _ in range(runs + 1):  # the first warms up
        dt, r, data = timed_post(conn, path, body, headers)
        times.append(dt)
        last = (r, data)
    conn.close()
    return statistics.median(times[1:]), last


def compute_ms(response):
    m = re.search(r"compute;dur=([0-9.]+)",
                  response.getheader("Server-Timing") or "")
    return float(m.group(1)) if m else float("nan")


def memcpy_ms(nbytes):
    src, dst = bytearray(nbytes), bytearray(nbytes)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        dst[:] = src
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def one(name, servers, runs):
    loss, n, k, seed = WORKLOADS[name]
    request = bodies.body(loss, n, k, seed)
    js = json.dumps(request, separators=(",", ":")).encode()
    head, blob = v2_binary(request)
    path = "/loss/" + loss
    ctype = {"Content-Type": "application/json"}
    row = {"workload": name, "json_mb": len(js) / 1e6,
           "binary_mb": (len(head) + len(blob)) / 1e6}
    row["json_ms"], _ = median_post(servers["lossd"], path, js, ctype, runs)
    row["json_ms"] *= 1e3
    t, (r, data) = median_post(
        servers["lossd"], "/v2/models/%s/infer" % loss, head + blob,
        {"Content-Type": "application/octet-stream",
         "Inference-Header-Content-Length": str(len(head))}, runs)
    row["v2_ms"], row["compute_ms"] = t * 1e3, compute_ms(r)
    hl = int(r.getheader("Inference-Header-Content-Length"))
    row["floor_ms"] = row["compute_ms"] + memcpy_ms(len(blob) + len(data) - hl)
    if "peer" in servers:
        t, _ = median_post(servers["peer"], path, js, ctype, runs)
        row["peer_ms"] = t * 1e3
    return row


def report(rows):
    lines = ["# Open Inference Protocol: binary FP32 vs JSON", "",
             "| workload | JSON /loss ms | v2 binary ms | JSON/v2 | "
             "compute + memcpy ms | v2/floor | peer JSON ms | peer/v2 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        peer = r.get("peer_ms")
        lines.append("| %s | %.1f | %.1f | %.1fx | %.1f | %.2fx | %s | %s |" % (
            r["workload"], r["json_ms"], r["v2_ms"], r["json_ms"] / r["v2_ms"],
            r["floor_ms"], r["v2_ms"] / r["floor_ms"],
            "%.1f" % peer if peer else "n/a",
            "%.1fx" % (peer / r["v2_ms"]) if peer else "n/a"))
    lines += ["", "Targets: v2 binary >= 10x faster than lossd's JSON path, "
              "and within 3x of the core compute time plus a memcpy of the "
              "tensors (median end-to-end latency, one kept-alive "
              "connection on loopback)."]
    return "\n".join(lines) + "\n"


def peer_available():
    try:
        import fastapi  # noqa: F401
        import torch  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    out = os.path.join(args.build, "bench")
    body_dir = os.path.join(out, "bodies")
    os.makedirs(body_dir, exist_ok=True)
    sys.argv = ["bodies.py", body_dir]
    bodies.main()  # the small body each server's start-up check sends
    args.lossd = os.path.join(args.build, "lossd")
    names = ["lossd"] + (["peer"] if peer_available() else [])
    servers, started = {}, []
    try:
        for s in names:
            srv = run.make_server(s, args, out)
            if srv.start(body_dir):
                servers[s] = srv.port
                started.append(srv)
        if "lossd" not in servers:
            raise SystemExit("v2_bench: lossd did not start")
        rows = [one(w, servers, 3 if args.quick else 7) for w in WORKLOADS]
    finally:
        for srv in started:
            srv.stop()
    text = report(rows)
    with open(os.path.join(out, "v2.md"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
