// lib.mjs -- what the API tests share: the document, a JSON-schema validator
// over it, a daemon on a loopback port, and HTTP requests written by hand
// where a client library would hide what is sent (Content-Length above the
// limit, a chunked body, a wrong method).
//
// Environment (set by `make test-api`): LOSSD_BIN, the daemon; LOSSD_BUILD,
// the build directory holding gen/openapi.json and gen/docs.html.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BUILD = path.resolve(process.env.LOSSD_BUILD || path.join(ROOT, "build"));
export const BIN = path.resolve(process.env.LOSSD_BIN || path.join(BUILD, "lossd"));

// Packages come from api/node_modules, installed by the Makefile.
export const requireApi = createRequire(path.join(ROOT, "api", "package.json"));

export const DOC_PATH = path.join(BUILD, "gen", "openapi.json");
export const DOCS_HTML_PATH = path.join(BUILD, "gen", "docs.html");
export const doc = JSON.parse(readFileSync(DOC_PATH, "utf8"));

/* ---- The document ------------------------------------------------------- */

// The object a local "#/..." reference points at.
export function pointer(ref) {
  if (!ref.startsWith("#/")) throw new Error(`not a local reference: ${ref}`);
  return ref
    .slice(2)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((o, k) => {
      if (o === undefined || !(k in o)) throw new Error(`unresolved: ${ref}`);
      return o[k];
    }, doc);
}

// Follows $ref (the referenced object's keys under the referring one's).
export function deref(o) {
  while (o && o.$ref) {
    const { $ref, ...rest } = o;
    o = { ...pointer($ref), ...rest };
  }
  return o;
}

export const lossPaths = Object.keys(doc.paths).filter((p) => p.startsWith("/loss/"));
export const lossNames = lossPaths.map((p) => p.slice("/loss/".length));
export const divergencePaths = Object.keys(doc.paths).filter((p) => p.startsWith("/divergence/"));
export const divergenceNames = divergencePaths.map((p) => p.slice("/divergence/".length));
// Every path that computes (POST): the losses, then the estimates.
export const computePaths = [...lossPaths, ...divergencePaths];

// The POST operation of a computing path: request examples, responses.
export function computeOperation(path) {
  return doc.paths[path].post;
}

// The last part of a path: "hinge" for /loss/hinge.
export const shortName = (path) => path.slice(path.lastIndexOf("/") + 1);

/* ---- Schema validation -------------------------------------------------- */

const Ajv2020 = requireApi("ajv/dist/2020").default;
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(doc, "openapi.json");
const compiled = new Map();

export const counts = { validated: 0 };

// Validates value against the schema at ref ("#/components/schemas/X") or
// an inline schema object of the document (addressed by its JSON pointer).
export function validate(ref, value) {
  if (!compiled.has(ref)) compiled.set(ref, ajv.getSchema(`openapi.json${ref}`));
  const v = compiled.get(ref);
  if (!v) throw new Error(`no schema at ${ref}`);
  const ok = v(value);
  return ok ? null : ajv.errorsText(v.errors, { dataVar: "body" });
}

// The JSON pointer of a response's application/json schema, following
// a $ref to components/responses.
export function responseSchemaRef(opPointer, status) {
  let resp = pointer(`${opPointer}/responses/${status}`);
  let at = `${opPointer}/responses/${status}`;
  if (resp.$ref) {
    at = resp.$ref;
    resp = pointer(resp.$ref);
  }
  if (!resp.content || !resp.content["application/json"]) return null;
  const s = resp.content["application/json"].schema;
  return s.$ref ? s.$ref : `${at}/content/application~1json/schema`;
}

export function opPointer(pathName, method) {
  return `#/paths/${pathName.replace(/~/g, "~0").replace(/\//g, "~1")}/${method}`;
}

/* ---- Comparing answers -------------------------------------------------- */

// Same structure, equal strings and booleans, numbers within rtol.
export function diff(a, b, rtol = 1e-6, at = "body") {
  if (typeof a === "number" && typeof b === "number") {
    const tol = rtol * Math.max(Math.abs(a), Math.abs(b)) + 1e-12;
    return Math.abs(a - b) <= tol ? null : `${at}: ${a} != ${b}`;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return `${at}: array vs not`;
    if (a.length !== b.length) return `${at}: length ${a.length} != ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = diff(a[i], b[i], rtol, `${at}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort().join(",");
    const kb = Object.keys(b).sort().join(",");
    if (ka !== kb) return `${at}: keys {${ka}} != {${kb}}`;
    for (const k of Object.keys(a)) {
      const d = diff(a[k], b[k], rtol, `${at}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return a === b ? null : `${at}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
}

/* ---- The daemon --------------------------------------------------------- */

// Starts the daemon on 127.0.0.1 with an ephemeral port (--port 0) and
// resolves when its start-up line names the port.
export function startDaemon(extra = [], env = {}) {
  const args = ["--host", "127.0.0.1", "--port", "0", "--log-format", "json", ...extra];
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  // Never outlive the test process, whatever its hooks managed to do.
  process.on("exit", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  let err = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no start-up line within 10 s:\n${out}${err}`));
    }, 10000);
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`lossd exited with ${code}:\n${out}${err}`));
    });
    child.stdout.on("data", (d) => {
      out += d;
      for (const line of out.split("\n")) {
        let ev;
        try {
          ev = JSON.parse(line);
        } catch {
          continue;
        }
        if (ev.event === "listening" && ev.port) {
          clearTimeout(timer);
          child.removeAllListeners("exit");
          child.stdout.removeAllListeners("data");
          child.stdout.resume();
          const exited = new Promise((r) => child.on("exit", (code) => r(code)));
          let termed = false;
          const term = () => {
            if (!termed) child.kill("SIGTERM");
            termed = true;
          };
          resolve({
            port: ev.port,
            child,
            log: () => out + err,
            // SIGTERM once (a second one cuts the drain short), then the
            // exit status; SIGKILL after 15 s.
            term,
            stop: async () => {
              if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
              term();
              const timer = setTimeout(() => child.kill("SIGKILL"), 15000);
              const code = await exited;
              clearTimeout(timer);
              return code;
            },
          });
          return;
        }
      }
    });
  });
}

/* ---- HTTP by hand ------------------------------------------------------- */

// Sends raw bytes and reads the whole response: {status, headers, body,
// json}.  Header names are lower-cased.
export function rawRequest(port, head, body = Buffer.alloc(0), { timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const chunks = [];
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) return reject(err);
      const all = Buffer.concat(chunks);
      const res = parseResponse(all);
      if (!res) return reject(new Error(`incomplete response: ${all.toString().slice(0, 200)}`));
      resolve(res);
    };
    const timer = setTimeout(() => finish(new Error("timed out")), timeout);
    sock.on("data", (d) => {
      chunks.push(d);
      if (parseResponse(Buffer.concat(chunks))) finish();
    });
    sock.on("end", () => finish());
    sock.on("error", (e) => {
      // The daemon may answer and close before it has read everything we
      // sent (413 from Content-Length): a complete response still counts.
      if (parseResponse(Buffer.concat(chunks))) finish();
      else finish(e);
    });
    sock.on("connect", () => {
      sock.write(head);
      if (body.length) sock.write(body);
    });
  });
}

function parseResponse(buf) {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return null;
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = buf.subarray(end + 4);
  if (headers["content-length"] !== undefined) {
    const n = Number(headers["content-length"]);
    if (body.length < n) return null;
    body = body.subarray(0, n);
  } else if (/chunked/i.test(headers["transfer-encoding"] || "")) {
    const out = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf("\r\n", at);
      if (eol < 0) return null;
      const n = parseInt(body.subarray(at, eol).toString(), 16);
      if (n === 0) break;
      if (body.length < eol + 2 + n) return null;
      out.push(body.subarray(eol + 2, eol + 2 + n));
      at = eol + 4 + n;
    }
    body = Buffer.concat(out);
  }
  const text = body.toString("utf8");
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: Number(m[1]), headers, text, json };
}

// An ordinary request: method, path, a body (object: sent as JSON),
// content type and extra headers.
export function request(port, method, url, body, { type = "application/json", headers = {} } = {}) {
  const data =
    body === undefined
      ? Buffer.alloc(0)
      : Buffer.from(typeof body === "string" ? body : JSON.stringify(body), "utf8");
  let head = `${method} ${url} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
  if (body !== undefined) head += `Content-Type: ${type}\r\nContent-Length: ${data.length}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return rawRequest(port, head + "\r\n", data);
}

export const post = (port, url, body, opts) => request(port, "POST", url, body, opts);
export const get = (port, url) => request(port, "GET", url);
