#!/usr/bin/env node
// Can a browser tab load the packages? Bundles every package's main entry (and the extra browser
// entries listed below) from its built `dist` with esbuild for `platform: 'browser'`, using the
// `browser` export condition and no shims or aliases, and lists every import of a Node built-in or
// of the `webgpu` addon (with the file that imports it) and every use of the `Buffer`/`process`
// globals (with the module that uses it). Needs `pnpm build` first.
//
//   node tools/check-browser-bundle.mjs
//
// Exits 1 when anything is found, or when an entry fails to bundle.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Subpath entries that must run in a browser besides each package's main entry. */
const EXTRA_ENTRIES = { '@peft-ts/nf4-quant': ['./gpu'] };

/** Node globals a browser lacks; a free reference to one is renamed to a marker we can find. */
const NODE_GLOBALS = ['Buffer', 'process'];
const MARKER = '__peft_node_global_';

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, name.split('/')[0]]));

/** Why an import specifier cannot be loaded in a browser, or null when it can. */
export function forbiddenImport(specifier) {
  if (specifier.startsWith('node:')) return 'Node built-in';
  if (BUILTINS.has(specifier) || BUILTINS.has(specifier.split('/')[0])) return 'Node built-in';
  if (specifier === 'webgpu' || specifier.startsWith('webgpu/')) return 'Dawn addon (webgpu)';
  return null;
}

/**
 * Picks the file an exports-map target gives under the `browser` condition (Node's algorithm:
 * the first key, in object order, whose condition applies).
 */
export function resolveExportTarget(target, conditions = ['browser', 'import', 'default']) {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const item of target) {
      const found = resolveExportTarget(item, conditions);
      if (found) return found;
    }
    return null;
  }
  if (target && typeof target === 'object') {
    for (const [key, value] of Object.entries(target)) {
      if (!conditions.includes(key)) continue;
      const found = resolveExportTarget(value, conditions);
      if (found) return found;
    }
  }
  return null;
}

const display = (path) => (path.startsWith(ROOT) ? relative(ROOT, path) : path);
const escapeRe = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The source files (from a built file's source map) whose text imports `specifier` or names the
 * global `name`: a pointer to what to change, since a built file bundles many sources.
 */
async function sourcesMentioning(builtFile, { specifier, global }) {
  const mapPath = `${builtFile}.map`;
  if (!existsSync(mapPath)) return [];
  const map = JSON.parse(await readFile(mapPath, 'utf8'));
  const re = specifier
    ? new RegExp(`(from|import|require)\\s*\\(?\\s*['"](node:)?${escapeRe(specifier.replace(/^node:/, ''))}['"]`)
    : new RegExp(`(^|[^.\\w$'"])(${global}\\s*[.([]|typeof\\s+${global}\\b)`, 'm');
  const found = [];
  (map.sources ?? []).forEach((source, i) => {
    const text = map.sourcesContent?.[i];
    if (typeof text === 'string' && re.test(text)) found.push(display(join(builtFile, '..', source)));
  });
  return found;
}

/**
 * Bundles one entry file for the browser and returns what stops it from running there:
 * `{ kind: 'import' | 'global' | 'error', what, where }` records.
 */
export async function checkEntry(file) {
  const problems = [];
  const seen = new Set();
  const add = (problem) => {
    const key = `${problem.kind}\0${problem.what}\0${problem.where}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  };
  const plugin = {
    name: 'forbidden-imports',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const why = forbiddenImport(args.path);
        if (!why) return undefined;
        add({ kind: 'import', what: `${args.path} (${why})`, where: display(args.importer) });
        return { path: args.path, external: true };
      });
    },
  };
  let result;
  try {
    result = await build({
      entryPoints: [file],
      absWorkingDir: ROOT,
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      conditions: ['browser'],
      target: 'es2022',
      minify: false,
      treeShaking: true,
      logLevel: 'silent',
      define: Object.fromEntries(NODE_GLOBALS.map((name) => [name, `${MARKER}${name}`])),
      plugins: [plugin],
    });
  } catch (error) {
    const messages = error?.errors?.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`);
    add({ kind: 'error', what: messages?.join('\n') ?? String(error), where: display(file) });
    return problems;
  }
  const text = result.outputFiles[0].text;
  // esbuild's unminified bundles open each module's code with a `// <path>` comment.
  let module = display(file);
  const markerRe = new RegExp(`${MARKER}(${NODE_GLOBALS.join('|')})`, 'g');
  for (const line of text.split('\n')) {
    const header = /^\/\/ (\S+\.[cm]?[jt]sx?)$/.exec(line);
    if (header) {
      module = header[1];
      continue;
    }
    for (const match of line.matchAll(markerRe)) {
      const before = line.slice(0, match.index);
      const guard = /typeof\s*\(?\s*$/.test(before) ? ' (typeof check)' : '';
      add({ kind: 'global', what: `${match[1]}${guard}`, where: module });
    }
  }
  for (const p of problems) {
    if (p.kind === 'error') continue;
    const built = join(ROOT, p.where);
    const sources =
      p.kind === 'import'
        ? await sourcesMentioning(built, { specifier: p.what.split(' ')[0] })
        : await sourcesMentioning(built, { global: p.what.split(' ')[0] });
    if (sources.length > 0) p.sources = sources;
  }
  return problems;
}

/** The entries to check: each package's main entry plus EXTRA_ENTRIES, as built files. */
export async function browserEntries(root = ROOT) {
  const entries = [];
  const dir = join(root, 'packages');
  for (const name of (await readdir(dir)).sort()) {
    const manifestPath = join(dir, name, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    if (manifest.private) continue;
    for (const subpath of ['.', ...(EXTRA_ENTRIES[manifest.name] ?? [])]) {
      const target = resolveExportTarget(manifest.exports?.[subpath]);
      const label = subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`;
      entries.push({ label, file: target ? join(dir, name, target) : null });
    }
  }
  return entries;
}

async function main() {
  const entries = await browserEntries();
  let failed = 0;
  for (const { label, file } of entries) {
    if (!file) {
      failed++;
      process.stdout.write(`FAIL ${label}: its package.json exports has no browser, import or default target\n`);
      continue;
    }
    if (!existsSync(file)) {
      failed++;
      process.stdout.write(`FAIL ${label}: ${display(file)} does not exist (run pnpm build first)\n`);
      continue;
    }
    const problems = await checkEntry(file);
    if (problems.length === 0) {
      process.stdout.write(`ok   ${label}\n`);
      continue;
    }
    failed++;
    process.stdout.write(`FAIL ${label} (${display(file)}):\n`);
    for (const p of problems) {
      const what = p.kind === 'import' ? `imports ${p.what}` : p.kind === 'global' ? `uses the Node global ${p.what}` : `does not bundle: ${p.what}`;
      const from = p.sources ? ` (in ${p.sources.join(', ')})` : '';
      process.stdout.write(`       ${p.where} ${what}${from}\n`);
    }
  }
  if (failed > 0) {
    process.stdout.write(`\n${failed} of ${entries.length} entries cannot run in a browser as built.\n`);
    process.exit(1);
  }
  process.stdout.write(`\nall ${entries.length} entries bundle for the browser without Node built-ins, webgpu, Buffer or process.\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
