// Bundle one ES module per widget, and the one stylesheet, into the Python package's
// widgets/static/ (git-ignored; the wheel build and `make install` run this).
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";

const outdir = new URL("../src/jupyter_interactions/widgets/static/", import.meta.url).pathname;
await mkdir(outdir, { recursive: true });
await build({
  entryPoints: ["src/run.js", "src/files.js", "src/jobs.js", "src/panel.js", "src/probe.js"],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "linked",
  outdir,
  logLevel: "warning",
});
await copyFile("lib/widgets.css", `${outdir}widgets.css`);
console.log(`built the widgets into ${outdir}`);
