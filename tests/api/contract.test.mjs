// contract.test.mjs -- the daemon against its OpenAPI document: every
// example is sent and its answer validated against the document's schema
// for that status (and compared with the example's values), every error
// status listed for a loss is provoked once, the service endpoints answer
// as described, and the /losses catalog agrees with the document on names,
// fields, shapes, defaults, allowed values and ranges.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import {
  BUILD,
  counts,
  deref,
  diff,
  doc,
  get,
  computeOperation,
  computePaths,
  divergenceNames,
  divergencePaths,
  lossNames,
  lossPaths,
  opPointer,
  pointer,
  post,
  rawRequest,
  request,
  responseSchemaRef,
  shortName,
  startDaemon,
  validate,
} from "./lib.mjs";

const MAX_BODY = 1 << 20;
const KEY = "contract-test-key";
let d; // the daemon most tests talk to
let k; // one with an API key, and /metrics behind it

before(async () => {
  d = await startDaemon(["--max-body", String(MAX_BODY), "--threads", "2"]);
  k = await startDaemon(["--threads", "1", "--metrics-auth", "on"], { LOSSD_API_KEYS: KEY });
});

after(async () => {
  if (d && d.child.exitCode === null) await d.stop();
  if (k && k.child.exitCode === null) await k.stop();
  process.stderr.write(`contract: ${counts.validated} responses validated against the document\n`);
});

const SANITIZER = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/;

// Validates res against the document's schema for (path, method, status).
function check(pathName, method, res, status) {
  assert.equal(res.status, status, `${method} ${pathName}: ${res.status} ${res.text.slice(0, 300)}`);
  const op = opPointer(pathName, method);
  assert.ok(pointer(op).responses[String(status)], `${method} ${pathName} does not list ${status}`);
  const ref = responseSchemaRef(op, String(status));
  assert.ok(ref, `${method} ${pathName} ${status} has no JSON schema`);
  assert.notEqual(res.json, undefined, `not JSON: ${res.text.slice(0, 200)}`);
  const err = validate(ref, res.json);
  assert.equal(err, null, `${method} ${pathName} ${status}: ${err}\n${res.text.slice(0, 400)}`);
  assert.match(res.headers["content-type"] || "", /^application\/json/);
  counts.validated++;
}

function requestExamples(path) {
  return computeOperation(path).requestBody.content["application/json"].examples;
}

// The error examples of a computing path: {status, key, request, value}.
function errorExamples(path) {
  const out = [];
  for (const [status, r] of Object.entries(computeOperation(path).responses)) {
    const resp = deref(r);
    const ex = resp.content?.["application/json"]?.examples || {};
    for (const [key, e] of Object.entries(ex))
      if (e["x-request"]) out.push({ status: Number(status), key, request: e["x-request"], value: e.value });
  }
  return out;
}

describe("the document", () => {
  test("has a /loss path for every loss name, in the order of LossName", () => {
    assert.deepEqual(lossNames, doc.components.schemas.LossName.enum);
  });

  test("has a /divergence path for every DivergenceName", () => {
    assert.deepEqual(divergenceNames, doc.components.schemas.DivergenceName.enum);
  });

  for (const path of computePaths) {
    test(`${path}: every request example is valid for the request schema`, () => {
      const op = computeOperation(path);
      const ref = op.requestBody.content["application/json"].schema.$ref;
      const ok = op.responses["200"].content["application/json"].examples;
      const ex = requestExamples(path);
      assert.ok(ex.basic, "no basic example");
      for (const [key, e] of Object.entries(ex)) {
        assert.ok(ok[key], `request example ${key} has no 200 example of the same name`);
        assert.equal(validate(ref, e.value), null, `${path}/${key}`);
      }
    });

    test(`${path}: every 200 example is valid for the response schema`, () => {
      const op = computeOperation(path);
      const ref = op.responses["200"].content["application/json"].schema.$ref;
      for (const [key, e] of Object.entries(op.responses["200"].content["application/json"].examples))
        assert.equal(validate(ref, e.value), null, `${path}/${key}`);
    });

    test(`${path}: the summary gives the formula on one line`, () => {
      const s = computeOperation(path).summary;
      assert.ok(s.startsWith(`${shortName(path)}: `), s);
      assert.ok(!s.includes("\n"), s);
    });
  }
});

describe("every example, sent to the daemon", () => {
  for (const path of computePaths) {
    test(`${path}: each request example is answered with its 200 example`, async () => {
      const op = computeOperation(path);
      const answers = op.responses["200"].content["application/json"].examples;
      for (const [key, e] of Object.entries(requestExamples(path))) {
        const res = await post(d.port, path, e.value);
        check(path, "post", res, 200);
        const dd = diff(res.json, answers[key].value);
        assert.equal(dd, null, `${path}/${key}: ${dd}`);
      }
    });

    test(`${path}: each error example is answered with its status, code and field`, async () => {
      const ex = errorExamples(path);
      assert.ok(ex.length >= 1, "no error example");
      for (const e of ex) {
        const res = await post(d.port, path, e.request);
        check(path, "post", res, e.status);
        assert.equal(res.json.error.code, e.value.error.code, `${path}/${e.key}`);
        assert.equal(res.json.error.field, e.value.error.field, `${path}/${e.key}`);
        assert.equal(e.key, e.value.error.code, `example ${e.key} shows code ${e.value.error.code}`);
      }
    });
  }

  // The other operations' examples: GET answers, and requests of other
  // POST paths (the Open Inference Protocol).  A {name} in the path is the
  // example's name when that is a loss, else the first loss.
  const others = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [method, o] of Object.entries(item)) {
      if (computePaths.includes(p) || !["get", "post"].includes(method)) continue;
      const ok = o.responses?.["200"]?.content?.["application/json"]?.examples || {};
      const reqs = o.requestBody?.content?.["application/json"]?.examples || {};
      for (const key of Object.keys(method === "post" ? reqs : ok)) others.push({ p, method, key, ok, reqs });
    }
  }
  for (const { p, method, key, ok, reqs } of others) {
    test(`${method.toUpperCase()} ${p} example ${key} is what the daemon answers`, async () => {
      const url = p.replace("{name}", lossNames.includes(key) ? key : lossNames[0]);
      const res = method === "post" ? await post(d.port, url, reqs[key].value) : await get(d.port, url);
      check(p, method, res, 200);
      if (ok[key]) {
        const dd = diff(res.json, ok[key].value);
        assert.equal(dd, null, `${p}/${key}: ${dd}`);
      }
    });
  }

  test("the example of every shared error response is what the daemon says", async () => {
    const R = doc.components.responses;
    const cases = [
      [R.BadRequest.content["application/json"].examples.invalid_json, () =>
        post(d.port, "/loss/hinge", '{"scores": [0.8, -0.4], "labels": [1, -1]')],
      [R.BadRequest.content["application/json"].examples.wrong_type, () =>
        post(d.port, "/loss/hinge", { scores: [0.8, -0.4], labels: [1, -1], margin: "1" })],
      [R.NotFound.content["application/json"].examples.unknown_loss, () => get(d.port, "/losses/hnge")],
      [R.MethodNotAllowed.content["application/json"].examples.get, () => get(d.port, "/loss/hinge")],
      [R.MethodNotAllowedGet.content["application/json"].examples.post, () => post(d.port, "/losses", "{}")],
      [R.UnsupportedMediaType.content["application/json"].examples.unsupported_media_type, () =>
        post(d.port, "/loss/hinge", "scores=0.8", { type: "text/plain" })],
      [R.Unauthorized.content["application/json"].examples.unauthorized, () =>
        post(k.port, "/loss/hinge", requestExamples("/loss/hinge").basic.value)],
    ];
    for (const [ex, send] of cases) {
      const res = await send();
      assert.equal(validate("#/components/schemas/Error", res.json), null);
      counts.validated++;
      assert.equal(res.json.error.code, ex.value.error.code);
      assert.equal(res.json.error.field, ex.value.error.field);
    }
  });
});

// One request per (loss, status) that the status's description promises.
async function provoke(path, status) {
  const basic = requestExamples(path).basic.value;
  switch (status) {
    case 400: {
      const res = await post(d.port, path, '{"' + Object.keys(basic)[0] + '": [1, 2');
      assert.equal(res.json?.error?.code, "invalid_json");
      return res;
    }
    case 405: {
      const res = await get(d.port, path);
      assert.equal(res.headers.allow, "POST");
      assert.equal(res.json?.error?.code, "method_not_allowed");
      return res;
    }
    case 413: {
      const head =
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${MAX_BODY + 1}\r\nConnection: close\r\n\r\n`;
      const res = await rawRequest(d.port, head);
      assert.equal(res.json?.error?.code, "body_too_large");
      return res;
    }
    case 401: {
      const res = await post(k.port, path, basic);
      assert.equal(res.json?.error?.code, "unauthorized");
      assert.equal(res.headers["www-authenticate"], 'Bearer realm="lossd"');
      const wrong = await post(k.port, path, basic, { headers: { Authorization: "Bearer not-the-key" } });
      assert.equal(wrong.status, 401);
      return res;
    }
    case 415: {
      const res = await post(d.port, path, basic, { type: "text/plain" });
      assert.equal(res.json?.error?.code, "unsupported_media_type");
      return res;
    }
    case 422: {
      const e = errorExamples(path).find((x) => x.status === 422);
      return post(d.port, path, e.request);
    }
    default:
      return null;
  }
}

describe("every error status the document lists for a loss", () => {
  for (const path of computePaths) {
    const statuses = Object.keys(computeOperation(path).responses)
      .map(Number)
      .filter((s) => s >= 400 && s !== 503);
    test(`${path}: ${statuses.join(", ")}`, async () => {
      for (const s of statuses) {
        const res = await provoke(path, s);
        assert.ok(res, `the test cannot provoke ${s}`);
        check(path, "post", res, s);
      }
    });
  }

  test("with an API key configured, the key opens every loss and /metrics; probes stay open", async () => {
    const auth = { headers: { Authorization: `Bearer ${KEY}` } };
    for (const path of computePaths) {
      const res = await post(k.port, path, requestExamples(path).basic.value, auth);
      check(path, "post", res, 200);
    }
    const m = await get(k.port, "/metrics");
    check("/metrics", "get", m, 401);
    const m2 = await request(k.port, "GET", "/metrics", undefined, auth);
    assert.equal(m2.status, 200);
    for (const p of ["/", "/healthz", "/readyz", "/losses", "/openapi.json", "/docs"])
      assert.equal((await get(k.port, p)).status, 200, p);
  });

  test("a wrong JSON type is 400 wrong_type", async () => {
    const res = await post(d.port, "/loss/softmax", { logits: "wide", labels: [0] });
    check("/loss/softmax", "post", res, 400);
    assert.equal(res.json.error.code, "wrong_type");
    assert.equal(res.json.error.field, "logits");
  });

  test("nesting too deep is 422 shape_mismatch in JSON, 400 invalid_json in text that is not", async () => {
    const deep = '{"logits": [[[[[[1]]]]]], "labels": [0]}';
    const ok = await post(d.port, "/loss/softmax", deep);
    check("/loss/softmax", "post", ok, 422);
    assert.equal(ok.json.error.code, "shape_mismatch");
    assert.equal(ok.json.error.field, "logits[0][0][0]");
    const cut = '{"logits": ' + "[".repeat(100000);
    const bad = await post(d.port, "/loss/softmax", cut);
    check("/loss/softmax", "post", bad, 400);
    assert.equal(bad.json.error.code, "invalid_json");
    assert.equal(bad.json.error.message, `the body is not valid JSON (error at byte ${cut.length - 1})`);
  });

  test("a chunked body cut off at the limit is 413", async () => {
    const piece = Buffer.alloc(256 * 1024, 0x20);
    let body = Buffer.alloc(0);
    for (let i = 0; i < 5; i++)
      body = Buffer.concat([body, Buffer.from(piece.length.toString(16) + "\r\n"), piece, Buffer.from("\r\n")]);
    body = Buffer.concat([body, Buffer.from("0\r\n\r\n")]);
    const head =
      "POST /loss/hinge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    const res = await rawRequest(d.port, head, body);
    check("/loss/hinge", "post", res, 413);
    assert.equal(res.json.error.code, "body_too_large");
  });

  test("an unknown loss and an unknown path are 404 with the valid names", async () => {
    for (const url of ["/losses/nope", "/nope"]) {
      const res = await get(d.port, url);
      assert.equal(res.status, 404);
      assert.equal(validate("#/components/schemas/Error", res.json), null);
      counts.validated++;
      for (const name of lossNames) assert.ok(res.json.error.message.includes(name), name);
    }
    const res = await post(d.port, "/loss/nope", { x: [1] });
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, "unknown_loss");
    assert.equal(validate("#/components/schemas/Error", res.json), null);
    counts.validated++;
  });
});

describe("503: overloaded, then shutting down", () => {
  // A daemon with one worker and one queue slot, kept busy by kde
  // divergence requests on 7,000 samples per side in 2-D (O(N² D) kernel
  // terms each: most of a second, several under the sanitizers).
  let busy;
  const slowPath = "/divergence/samples";
  const slow = (() => {
    let s = 7;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    const set = () => Array.from({ length: 7000 }, () => [rnd(), rnd()]);
    return { p: set(), q: set(), method: "kde" };
  })();

  before(async () => {
    busy = await startDaemon(["--threads", "1", "--max-queue", "1"]);
  });
  after(async () => {
    if (busy && busy.child.exitCode === null) await busy.stop();
  });

  test("every loss answers 503 overloaded with Retry-After while the queue is full, and 503 shutting_down once draining", async () => {
    // One request computes and one waits: the queue is then full.  Each is
    // sent once the daemon's /metrics (answered without a worker) shows the
    // one before it admitted.
    const gauges = async () => {
      const m = (await get(busy.port, "/metrics")).text;
      const g = (name) => Number(new RegExp(`^lossd_${name} (\\d+)$`, "m").exec(m)?.[1]);
      return { depth: g("queue_depth"), inFlight: g("in_flight") };
    };
    const until = async (what, ok) => {
      let last;
      for (let i = 0; i < 400; i++) {
        last = await gauges();
        if (ok(last)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.fail(`${what}: queue depth ${last.depth}, in flight ${last.inFlight}`);
    };
    const inflight = [post(busy.port, slowPath, slow)];
    // Running: in flight (besides this /metrics request) and not waiting.
    await until("the first request never ran", (g) => g.inFlight >= 2 && g.depth === 0);
    await new Promise((r) => setTimeout(r, 200));
    await until("the first request never ran", (g) => g.inFlight >= 2 && g.depth === 0);
    inflight.push(post(busy.port, slowPath, slow));
    await until("the queue never filled", (g) => g.depth === 1);
    for (const path of computePaths) {
      const res = await post(busy.port, path, requestExamples(path).basic.value);
      check(path, "post", res, 503);
      assert.equal(res.json.error.code, "overloaded");
      assert.match(res.headers["retry-after"] || "", /^\d+$/);
    }
    // SIGTERM while the slow requests are in flight: the daemon drains.
    busy.term();
    await new Promise((r) => setTimeout(r, 200));
    const ready = await get(busy.port, "/readyz");
    check("/readyz", "get", ready, 503);
    assert.equal(ready.json.error.code, "shutting_down");
    const late = await post(busy.port, "/loss/hinge", requestExamples("/loss/hinge").basic.value);
    check("/loss/hinge", "post", late, 503);
    assert.equal(late.json.error.code, "shutting_down");
    // The work admitted before the signal still completes, then the daemon
    // exits 0.
    for (const r of await Promise.all(inflight)) check(slowPath, "post", r, 200);
    assert.equal(await busy.stop(), 0, busy.log());
    assert.doesNotMatch(busy.log(), SANITIZER);
  });
});

describe("service endpoints", () => {
  test("GET / names every loss of the document, in order", async () => {
    const res = await get(d.port, "/");
    check("/", "get", res, 200);
    assert.deepEqual(res.json.losses, lossNames);
    const ex = doc.paths["/"].get.responses["200"].content["application/json"].examples.basic.value;
    assert.deepEqual(res.json.losses, ex.losses);
  });

  test("GET /losses and /losses/{name} validate", async () => {
    const res = await get(d.port, "/losses");
    check("/losses", "get", res, 200);
    for (const name of lossNames) check("/losses/{name}", "get", await get(d.port, `/losses/${name}`), 200);
    check("/losses/{name}", "get", await get(d.port, "/losses/nope"), 404);
  });

  test("GET /divergences and /divergences/{name} validate", async () => {
    const res = await get(d.port, "/divergences");
    check("/divergences", "get", res, 200);
    for (const name of divergenceNames)
      check("/divergences/{name}", "get", await get(d.port, `/divergences/${name}`), 200);
    check("/divergences/{name}", "get", await get(d.port, "/divergences/nope"), 404);
  });

  test("GET /healthz, /readyz, /metrics", async () => {
    check("/healthz", "get", await get(d.port, "/healthz"), 200);
    check("/readyz", "get", await get(d.port, "/readyz"), 200);
    const m = await get(d.port, "/metrics");
    assert.equal(m.status, 200);
    assert.match(m.headers["content-type"], /^text\/plain/);
    assert.match(m.text, /^# (HELP|TYPE) lossd_/m);
  });

  test("every GET endpoint answers another method with 405 and Allow", async () => {
    for (const p of Object.keys(doc.paths).filter((x) => doc.paths[x].get)) {
      const url = p.replace("{name}", p.startsWith("/divergences/") ? divergenceNames[0] : lossNames[0]);
      const res = await request(d.port, "DELETE", url);
      check(p, "get", res, 405);
      assert.equal(res.headers.allow, "GET, HEAD");
    }
  });

  test("GET /docs is an HTML page", async () => {
    const res = await get(d.port, "/docs");
    assert.equal(res.status, 200);
    assert.match(res.headers["content-type"], /^text\/html/);
  });

  test("GET /openapi.json serves this document", async () => {
    const res = await get(d.port, "/openapi.json");
    assert.equal(res.status, 200);
    assert.match(res.headers["content-type"], /^application\/json/);
    assert.deepEqual(res.json, doc);
  });

  test("the embedded reference page loads nothing from another host", () => {
    const html = readFileSync(`${BUILD}/gen/docs.html`, "utf8");
    const refs = [...html.matchAll(/<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(https?:)?\/\//gi)];
    assert.deepEqual(refs.map((m) => m[0]), []);
    assert.doesNotMatch(html, /@import\s+url\(\s*["']?https?:/i);
    assert.doesNotMatch(html, /fonts\.googleapis\.com\/css/i);
  });
});

// The request forms of a computing path (oneOf alternatives, or the one
// schema), a field's schemas across them, and the 200 response schema.
const forms = (path) => {
  const s = deref(computeOperation(path).requestBody.content["application/json"].schema);
  return s.oneOf ? s.oneOf.map(deref) : [s];
};
const prop = (path, field) => {
  const found = forms(path).filter((f) => f.properties[field]).map((f) => deref(f.properties[field]));
  return found.length ? found : null;
};
const response = (path) => deref(computeOperation(path).responses["200"].content["application/json"].schema);
const leafType = (s) => {
  s = deref(s);
  if (s.anyOf) return leafType(s.anyOf[s.anyOf.length - 1]);
  return s.type === "array" ? leafType(s.items) : s.type;
};
// A number or integer schema's range in the catalog's words.
const range = (s) => ({
  minimum: s.enum ? Math.min(...s.enum) : s.minimum,
  exclusive_minimum: s.exclusiveMinimum,
  maximum: s.enum ? Math.max(...s.enum) : s.maximum,
  exclusive_maximum: s.exclusiveMaximum,
  not: s.not ? [s.not.const] : undefined,
});
const rangeDiff = (name, docRange, cat) => {
  const bad = [];
  for (const k of Object.keys(docRange))
    if ((docRange[k] !== undefined || cat[k] !== undefined) && JSON.stringify(docRange[k]) !== JSON.stringify(cat[k]))
      bad.push(`${name}.${k}: document ${JSON.stringify(docRange[k])}, catalog ${JSON.stringify(cat[k])}`);
  return bad;
};

for (const [list, key, paths, names] of [
  ["/losses", "losses", lossPaths, lossNames],
  ["/divergences", "divergences", divergencePaths, divergenceNames],
]) {
  describe(`the ${list} catalog agrees with the document`, () => {
    let catalog;
    before(async () => {
      catalog = (await get(d.port, list)).json[key];
    });

    test("names, in order", () => {
      assert.deepEqual(catalog.map((c) => c.name), names);
    });

    test("summaries: the daemon's one-line summary of each is not empty", () => {
      for (const c of catalog) assert.ok(c.summary.length > 10 && !c.summary.includes("\n"), c.name);
    });

    for (const path of paths) {
      const name = shortName(path);
      const entry = () => {
        const c = catalog.find((x) => x.name === name);
        assert.ok(c, "not in the catalog");
        return c;
      };

      test(`${name}: fields, shapes, types, defaults and allowed values`, () => {
        const c = entry();
        if (c.path !== undefined) assert.equal(c.path, path, "path");
        const docFields = new Set(forms(path).flatMap((f) => Object.keys(f.properties)));
        const catFields = new Set([...c.inputs.map((i) => i.name), ...c.parameters.map((p) => p.name)]);
        assert.deepEqual([...docFields].sort(), [...catFields].sort(), "field names");
        for (const i of c.inputs) {
          for (const p of prop(path, i.name)) {
            assert.deepEqual(p["x-shape"], i.shape, `${i.name} shape`);
            assert.deepEqual(p["x-layered-shape"], i.layered_shape, `${i.name} layered shape`);
            assert.deepEqual(p["x-vector-shape"], i.vector_shape, `${i.name} vector shape`);
            assert.equal(leafType(p), i.type, `${i.name} type`);
          }
          const everywhere = forms(path).every((f) => f.required.includes(i.name));
          assert.equal(everywhere, i.required, `${i.name} required`);
          if (i.alternative_to) {
            const mine = forms(path).filter((f) => f.properties[i.name]);
            const others = forms(path).filter((f) => !f.properties[i.name]);
            const alt = new Set(others.flatMap((f) => f.required).filter((n) => !mine.some((m) => m.properties[n])));
            assert.deepEqual([...alt].sort(), [...i.alternative_to].sort(), `${i.name} alternative_to`);
          }
        }
        for (const p of c.parameters) {
          const ps = prop(path, p.name);
          for (const s of ps) {
            assert.deepEqual(s.default, p.default === null ? undefined : p.default, `${p.name} default`);
            if (p.or) {
              const names = s.anyOf.find((x) => x.type === "string");
              const number = s.anyOf.find((x) => x.type !== "string");
              assert.deepEqual(names.enum, p.values, `${p.name} values`);
              assert.equal(number.type, p.or.type, `${p.name} number type`);
              continue;
            }
            const type = { number: "number", integer: "integer", boolean: "boolean", enum: "string", array: "array" }[p.type];
            assert.equal(s.type, type, `${p.name} type`);
            if (p.type === "enum") {
              const all = new Set(forms(path).flatMap((f) => (f.properties[p.name] ? deref(f.properties[p.name]).enum : [])));
              assert.deepEqual([...all], p.values, `${p.name} values`);
            }
            if (p.type === "array") assert.deepEqual(s["x-shape"], p.shape, `${p.name} shape`);
          }
          if (p.only_with) {
            for (const f of forms(path))
              assert.equal(!!f.properties[p.name], p.only_with.every((n) => f.properties[n]), `${p.name} only_with`);
          } else {
            assert.equal(ps.length, forms(path).length, `${p.name} is in only some forms of the document but the catalog has no only_with`);
          }
        }
      });

      test(`${name}: parameter ranges`, () => {
        const bad = [];
        for (const p of entry().parameters) {
          const s = prop(path, p.name)[0];
          if (p.type === "number" || p.type === "integer") bad.push(...rangeDiff(p.name, range(s), p));
          if (p.or) bad.push(...rangeDiff(p.name, range(s.anyOf.find((x) => x.type !== "string")), p.or));
        }
        assert.deepEqual(bad, []);
      });

      test(`${name}: outputs`, () => {
        const c = entry();
        const r = response(path);
        const keys = (s) => Object.keys(deref(s).properties);
        assert.deepEqual(keys(r.properties.metrics), c.outputs.metrics, "metrics");
        if (c.outputs.counts) {
          assert.deepEqual(keys(r.properties.parameters), c.outputs.parameters, "effective parameters");
          assert.deepEqual(r.required.filter((n) => n.startsWith("n_")), c.outputs.counts, "counts");
          return;
        }
        assert.equal(!!r.properties.per_sample, c.outputs.per_sample, "per_sample");
        assert.deepEqual(keys(r.properties.gradients).sort(), [...c.outputs.gradients].sort(), "gradients");
        if (c.outputs.generator)
          assert.deepEqual(keys(deref(r.properties.generator).properties.gradients), c.outputs.generator.gradients);
        else assert.equal(r.properties.generator, undefined);
      });
    }
  });
}

describe("shutdown", () => {
  test("after all of the above, SIGTERM stops each daemon with status 0 and no sanitizer report", async () => {
    for (const x of [d, k]) {
      assert.equal(await x.stop(), 0, x.log());
      assert.doesNotMatch(x.log(), SANITIZER);
    }
  });
});
