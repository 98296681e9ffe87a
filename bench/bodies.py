"""Request bodies of the benchmark, written once into a directory as
<workload>.json: the small requests of workload (a) and the large batches of
workload (b), seeded so that every run sends the same bytes.

Numbers are written as a client's json.dumps writes float64 values (the
shortest repr that round-trips, ~18 characters), the usual way a Python
pipeline sends a tensor's .tolist().

Usage: /usr/bin/python3 bench/bodies.py OUTDIR
"""
import json
import math
import os
import random
import sys

SMALL = {
    "softmax_8x10": ("softmax", 8, 10),
    "triplet_8x16": ("triplet", 8, 16),
    "kl_8x10": ("kl", 8, 10),
}
LARGE = {
    "softmax_256x1000": ("softmax", 256, 1000),
    "softmax_1000x1000": ("softmax", 1000, 1000),
    "triplet_4096x128": ("triplet", 4096, 128),
}


def matrix(rng, n, k):
    return [[rng.gauss(0.0, 1.0) for _ in range(k)] for _ in range(n)]


def distribution(rng, k):
    row = [math.exp(rng.gauss(0.0, 1.0)) for _ in range(k)]
    s = sum(row)
    return [x / s for x in row]


def body(loss, n, k, seed):
    rng = random.Random(seed)
    if loss == "softmax":
        return {"logits": matrix(rng, n, k),
                "labels": [rng.randrange(k) for _ in range(n)]}
    if loss == "triplet":
        return {"anchor": matrix(rng, n, k), "positive": matrix(rng, n, k),
                "negative": matrix(rng, n, k)}
    return {"p": [distribution(rng, k) for _ in range(n)],
            "q": [distribution(rng, k) for _ in range(n)]}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for seed, (name, (loss, n, k)) in enumerate({**SMALL, **LARGE}.items()):
        path = os.path.join(out, name + ".json")
        if os.path.exists(path):
            continue
        with open(path + ".tmp", "w") as f:
            json.dump(body(loss, n, k, seed), f, separators=(",", ":"))
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
