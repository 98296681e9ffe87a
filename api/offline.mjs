// offline.mjs -- makes the reference page that `redocly build-docs` wrote
// self-contained, and refuses one that is not:
//
//   node api/offline.mjs IN.html OUT.html
//
// The only outside address the Redoc bundle loads on its own is its
// attribution logo; it becomes an inline image.  Any <script>, <link>,
// <img> or <iframe> that still names another host is an error, as is a
// page without the Content-Security-Policy of api/docs.hbs, which keeps
// the browser from fetching anything else (icons the bundle could ask
// for) from another host.
import { readFileSync, renameSync, writeFileSync } from "node:fs";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node offline.mjs IN.html OUT.html");
  process.exit(2);
}

const logo =
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="16">' +
  '<text x="0" y="12" font-family="sans-serif" font-size="12" fill="#0044D4">Redocly</text></svg>';
const inline = "data:image/svg+xml," + encodeURIComponent(logo);

let html = readFileSync(input, "utf8");
const before = html.length;
html = html.replace(/https:\/\/cdn\.redoc\.ly\/redoc\/logo-mini(?:-full)?\.svg/g, inline);
if (html.length === before) console.error("offline.mjs: no attribution logo found to inline");

const outside = [
  ...html.matchAll(/<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\/[^"'\s>]+/gi),
].map((m) => m[0]);
const problems = [];
if (outside.length) problems.push(`loads from another host: ${outside.join(", ")}`);
if (!html.includes('http-equiv="Content-Security-Policy"')) problems.push("has no Content-Security-Policy");
if (problems.length) {
  console.error(`offline.mjs: ${input} ${problems.join("; ")}`);
  process.exit(1);
}
writeFileSync(output + ".tmp", html);
renameSync(output + ".tmp", output);
