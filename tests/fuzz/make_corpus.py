#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora and dictionaries from the reference
vectors: every request of tests/vectors/*.json and tests/vectors/*/*.json
becomes a loss_fuzz seed ("<loss>\\n<body>", where the loss of a file with
an "endpoint" such as /divergence/samples is "divergence/samples"), the
first request of each loss an HTTP seed, with the service endpoints and
framing cases beside them.

    /usr/bin/python3 tests/fuzz/make_corpus.py [--vectors DIR]

File names are content hashes, so running it again adds nothing twice."""
import argparse
import glob
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def put(directory, data):
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def post(loss, body, extra=b""):
    path = loss if "/" in loss else "loss/" + loss
    return (b"POST /%s HTTP/1.1\r\nHost: lossd\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (path.encode(), len(body), extra)) + body


def chunked(loss, body):
    half = len(body) // 2
    parts = b"".join(b"%x\r\n%s\r\n" % (len(p), p)
                     for p in (body[:half], body[half:]) if p)
    return (b"POST /loss/%s HTTP/1.1\r\nHost: lossd\r\n"
            b"Content-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" % loss.encode()) + parts + b"0\r\n\r\n"


def http_service_seeds(first):
    seeds = [b"%s %s HTTP/1.1\r\nHost: lossd\r\n\r\n" % (m, p)
             for m in (b"GET", b"HEAD")
             for p in (b"/", b"/losses", b"/losses/softmax", b"/healthz",
                       b"/readyz", b"/metrics", b"/openapi.json", b"/docs",
                       b"/nowhere")]
    seeds += [b"DELETE /healthz HTTP/1.1\r\nHost: lossd\r\n\r\n",
              b"GET /loss/softmax HTTP/1.0\r\n\r\n",
              b"POST /loss/nope HTTP/1.1\r\nHost: l\r\nContent-Length: 2\r\n\r\n{}",
              b"POST /loss/hinge HTTP/1.1\r\nHost: l\r\nContent-Type: text/plain\r\n"
              b"Content-Length: 2\r\n\r\n{}",
              b"POST /loss/hinge HTTP/1.1\r\nHost: l\r\nContent-Length: 2\r\n"
              b"Content-Length: 3\r\n\r\n{}",
              b"POST /loss/hinge HTTP/1.1\r\nHost: l\r\nContent-Length: 2\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n{}"]
    body = first.get("softmax") or next(iter(first.values()))
    seeds += [chunked("softmax", body),
              post("softmax", body, b"Expect: 100-continue\r\n"),
              post("softmax", body, b"Authorization: Bearer k\r\n"),
              post("softmax", body) + b"GET /healthz HTTP/1.1\r\nHost: l\r\n\r\n"]
    return seeds


def dictionary(path, words):
    with open(path, "w") as f:
        for w in sorted(words):
            f.write('"%s"\n' % "".join(
                c if " " <= c <= "~" and c not in '"\\' else "\\x%02X" % ord(c)
                for c in w))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", default=os.path.join(HERE, "..", "vectors"))
    args = ap.parse_args()
    words, first = set(), {}
    paths = glob.glob(os.path.join(args.vectors, "*.json")) + \
        glob.glob(os.path.join(args.vectors, "*", "*.json"))
    for path in sorted(paths):
        with open(path) as f:
            doc = json.load(f)
        for case in doc["cases"]:
            loss = case.get("loss") or doc["endpoint"].lstrip("/")
            body = json.dumps(case["request"], separators=(",", ":")).encode()
            put(os.path.join(HERE, "corpus", "loss"), loss.encode() + b"\n" + body)
            first.setdefault(loss, body)
            words.add(loss)
            for k, v in case["request"].items():
                words.add('"%s":' % k)
                if isinstance(v, str):
                    words.add('"%s"' % v)
    for loss, body in first.items():
        put(os.path.join(HERE, "corpus", "http"), post(loss, body))
    for seed in http_service_seeds(first):
        put(os.path.join(HERE, "corpus", "http"), seed)
    words |= {"1e999", "-0", "null", "true", "false", "NaN", "[[", "]]", "\\u0000"}
    dictionary(os.path.join(HERE, "loss.dict"), words)
    dictionary(os.path.join(HERE, "http.dict"), {
        "POST /loss/", "GET ", "HEAD ", " HTTP/1.1\r\n", " HTTP/1.0\r\n",
        "Host: ", "Content-Type: application/json\r\n", "Content-Length: ",
        "Transfer-Encoding: chunked\r\n", "Expect: 100-continue\r\n",
        "Connection: close\r\n", "Authorization: Bearer ", "\r\n\r\n", "0\r\n\r\n"}
        | {"/" + l if "/" in l else l for l in first})


if __name__ == "__main__":
    main()
