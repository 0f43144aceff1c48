// Builds the console into console/dist: index.html plus hashed assets
// (assets/app-<hash>.js and .css), minified. The output depends only on the
// sources and the pinned esbuild, so scripts/test can rebuild and compare
// with the committed copy.
//
//   node console/build.mjs      (scripts/build-console runs it)
//
// esbuild and preact come from .tools/console/node_modules (scripts/tools.sh
// installs them from console/package-lock.json). Always from there: the
// hashes esbuild gives depend on the modules' path relative to the sources.
import { createRequire } from 'node:module';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, '..', '.tools', 'console', 'node_modules');
const require = createRequire(join(modules, 'noop.js'));
const esbuild = require('esbuild');

const dist = join(here, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: join(here, 'src', 'main.jsx') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  nodePaths: [modules],
  outdir: dist,
  entryNames: 'assets/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => relative(dist, resolve(p)));
const js = outputs.find((p) => p.endsWith('.js'));
const css = outputs.find((p) => p.endsWith('.css'));
if (!js || !css) throw new Error(`expected one .js and one .css, got ${outputs.join(', ')}`);

// Asset paths are relative, so the page works at / on the runner and at
// the root of the CloudFront site alike.
const html = `<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Charla</title>
<link rel="stylesheet" href="${css}">
<script type="module" src="${js}"></script>
</head>
<body>
<noscript><p lang="es">La consola de Charla necesita JavaScript.</p><p lang="en">Charla's console needs JavaScript.</p><p lang="pt">O console do Charla precisa de JavaScript.</p></noscript>
<div id="app"></div>
</body>
</html>
`;
writeFileSync(join(dist, 'index.html'), html);
for (const p of [...outputs, 'index.html']) console.log(`console/dist/${p}`);
