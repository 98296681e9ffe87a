#!/usr/bin/env python3
"""Writes the seeds of v2_fuzz (tests/fuzz/corpus/v2/): for every loss, the
first reference vector case as a v2 request with JSON data, and the same with
every input as binary tensor data ("<model>\\n<header length>\\n<body>").

    /usr/bin/python3 tests/fuzz/make_v2_corpus.py
"""
import hashlib
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = HERE.parent / "vectors"
OUT = HERE / "corpus" / "v2"

# The integer inputs of the table (server/table.c): labels.
INTEGER = {"labels"}


def shape_of(a):
    shape = []
    while isinstance(a, list):
        shape.append(len(a))
        a = a[0] if a else None
    return shape


def flat(a):
    if not isinstance(a, list):
        return [a]
    return [x for e in a for x in flat(e)]


def is_tensor(v):
    return isinstance(v, list) and v and not isinstance(v[0], str)


def seeds(loss, request):
    inputs, params = [], {}
    for k, v in request.items():
        if is_tensor(v) and k != "weight":
            inputs.append((k, v))
        else:
            params[k] = v
    body = {"id": "seed", "parameters": params, "inputs": [
        {"name": k, "datatype": "INT64" if k in INTEGER else "FP64",
         "shape": shape_of(v), "data": v} for k, v in inputs]}
    yield f"{loss}\n\n".encode() + json.dumps(body).encode()
    binary = b""
    for t, (k, v) in zip(body["inputs"], inputs):
        values = flat(v)
        if k in INTEGER:
            data = struct.pack(f"<{len(values)}q", *[int(x) for x in values])
        else:
            t["datatype"] = "FP32"
            data = struct.pack(f"<{len(values)}f", *values)
        del t["data"]
        t["parameters"] = {"binary_data_size": len(data)}
        binary += data
    body["parameters"]["binary_data_output"] = True
    head = json.dumps(body).encode()
    yield f"{loss}\n{len(head)}\n".encode() + head + binary


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    done = set()
    for path in sorted(VECTORS.glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            loss = case["loss"]
            if loss in done or "/" in loss or "error" in case:
                continue
            done.add(loss)
            for s in seeds(loss, case["request"]):
                (OUT / hashlib.sha1(s).hexdigest()).write_bytes(s)


if __name__ == "__main__":
    main()
