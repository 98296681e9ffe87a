// Validates Kubernetes manifests against the API's OpenAPI schemas
// (kubernetes-models; the Prometheus Operator's models for ServiceMonitor):
// field types, required fields and enumerations.  Reads the YAML files
// named on the command line, or standard input when there are none.
//
//   node validate.mjs ../k8s/deployment.yaml ...
//   kubectl kustomize ../k8s | node validate.mjs
//
// Before the manifests it validates a known-bad Deployment, so that a
// validator that accepts anything is noticed.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const modules = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator/monitoring.coreos.com",
};

async function modelFor(obj) {
  const [group, version] = obj.apiVersion.includes("/")
    ? obj.apiVersion.split("/")
    : ["", obj.apiVersion];
  const base = modules[group] ?? `kubernetes-models${group ? "/" + group : ""}`;
  const mod = await import(`${base}/${version}/${obj.kind}`);
  return mod[obj.kind] ?? mod.default;
}

// Returns null when obj is valid, else the validator's message.
async function problem(obj) {
  let Model;
  try {
    Model = await modelFor(obj);
  } catch {
    return `no schema for ${obj.apiVersion} ${obj.kind}`;
  }
  try {
    new Model(obj).validate();
    return null;
  } catch (e) {
    return e.message;
  }
}

const broken = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "broken" },
  spec: {
    selector: { matchLabels: { app: "x" } },
    template: {
      metadata: { labels: { app: "x" } },
      spec: { containers: [{ name: "x", securityContext: { runAsNonRoot: "yes" } }] },
    },
  },
};
if ((await problem(broken)) === null) {
  console.log("FAIL the validator accepted an invalid Deployment");
  process.exit(1);
}

const inputs = process.argv.length > 2
  ? process.argv.slice(2).map((f) => [f, readFileSync(f, "utf8")])
  : [["<stdin>", readFileSync(0, "utf8")]];
let count = 0;
let failed = 0;
for (const [file, text] of inputs) {
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      console.log(`FAIL ${file}: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    count++;
    const why = await problem(obj);
    const name = `${file}: ${obj.kind} ${obj.metadata?.name}`;
    if (why) {
      console.log(`FAIL ${name}: ${why}`);
      failed++;
    }
  }
}
console.log(`validate: ${count} objects against the Kubernetes schemas, ${failed} invalid`);
process.exit(failed || count === 0 ? 1 : 0);
