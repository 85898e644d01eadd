// Build the page into the Python package: ../xmppnetgraph/http/static/
//   index.html                the page, naming the hashed assets
//   assets/<name>-<hash>.js   the bundle (and .css, .map, .LEGAL.txt)
//   assets/*.gz               a gzip copy of each text asset, served to
//                             clients that accept it
// The directory is not committed; scripts/build-web runs this, and setup.py
// runs it when a wheel is built without it.
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "xmppnetgraph", "http", "static");
const assets = join(out, "assets");

await rm(out, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  sourcemap: true,
  legalComments: "linked",
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  outdir: assets,
  metafile: true,
  absWorkingDir: here,
  logLevel: "warning",
});

// The entry point's outputs: its script and the stylesheet it imports.
const outputs = Object.entries(result.metafile.outputs);
const [script] = outputs.find(([, o]) => o.entryPoint !== undefined && o.entryPoint.endsWith("main.js"));
const style = outputs.find(([name]) => name.endsWith(".css"));
if (style === undefined) {
  throw new Error("the bundle has no stylesheet (main.js imports style.css)");
}

const template = await readFile(join(here, "src", "index.html"), "utf8");
const page = template
  .replaceAll("{{script}}", `/assets/${basename(script)}`)
  .replaceAll("{{style}}", `/assets/${basename(style[0])}`);
if (page.includes("{{")) {
  throw new Error("index.html has a placeholder that the build does not fill");
}
await writeFile(join(out, "index.html"), page);

for (const [name] of outputs) {
  if (/\.(js|css|map|txt)$/.test(name)) {
    const path = join(here, name);
    await writeFile(path + ".gz", gzipSync(await readFile(path), { level: 9 }));
  }
}
console.log(`web: built ${basename(script)} and ${basename(style[0])} into ${out}`);
