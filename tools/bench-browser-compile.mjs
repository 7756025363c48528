// The bench's compile measurement in headless Chromium (WebGPU on its software adapter): the first
// training step of a compile case on navigator.gpu, once compiling pipelines on demand and once
// after Runtime.precompile of the list the first run recorded. Each run gets a fresh browser and
// profile, so no browser-side shader cache carries over. Needs `pnpm build` and Debian's chromium.
//
//   node tools/bench-browser-compile.mjs ["demo qlora"] [rounds]
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'apps/web/package.json'));
const puppeteer = require('puppeteer-core');
const esbuild = require(join(root, 'node_modules/esbuild'));
const caseName = process.argv[2] ?? 'demo qlora';
const rounds = Number(process.argv[3] ?? 1);
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

const entry = `
import { COMPILE_CASES, measure } from './compile.ts';
import { parseModelConfig } from '@peft-ts/models';
globalThis.runCase = async (name, kernels) => {
  const c = COMPILE_CASES.find((x) => x.name === name);
  if (!c) throw new Error('no compile case ' + name + '; have ' + COMPILE_CASES.map((x) => x.name).join(', '));
  const m = await measure(c, parseModelConfig(c.config, name), kernels);
  return { readyMs: m.readyMs, firstMs: m.firstMs, secondMs: m.secondMs, pipelines: m.first.pipelines, loss0: m.loss0, kernels: m.kernels };
};`;
const bundle = await esbuild.build({
  stdin: { contents: entry, resolveDir: join(root, 'apps/bench/src/suites'), loader: 'ts' },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  conditions: ['browser'],
  write: false,
  logLevel: 'warning',
});
const files = {
  '/': ['text/html', '<!doctype html><html><body><script type="module" src="/bundle.js"></script></body></html>'],
  '/bundle.js': ['text/javascript', bundle.outputFiles[0].text],
};
const server = createServer((req, res) => {
  const file = files[req.url ?? ''];
  res.writeHead(file ? 200 : 404, file ? { 'content-type': file[0] } : {});
  res.end(file?.[1]);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
const port = server.address().port;

async function run(kernels) {
  const profile = mkdtempSync(join(tmpdir(), 'peft-ts-compile-'));
  const args = ['--enable-unsafe-webgpu', '--headless=new'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args, userDataDir: profile, protocolTimeout: 1_800_000 });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction('typeof globalThis.runCase === "function"', { timeout: 60_000 });
    const adapter = await page.evaluate(async () => {
      const a = await navigator.gpu.requestAdapter();
      return a ? `${a.info.vendor} ${a.info.architecture} ${a.info.description}`.trim() : 'none';
    });
    return { adapter, ...(await page.evaluate((name, k) => globalThis.runCase(name, k), caseName, kernels)) };
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const show = (mode, r) =>
  console.log(
    `${caseName}, ${mode} (${r.adapter}): build ${r.readyMs.toFixed(0)} ms + first step ${r.firstMs.toFixed(0)} ms = ${(r.readyMs + r.firstMs).toFixed(0)} ms; ` +
      `${r.pipelines} pipelines created by the first step; later step ${r.secondMs.toFixed(0)} ms; step-0 loss ${r.loss0}`,
  );
try {
  for (let i = 0; i < rounds; i++) {
    const onDemand = await run(null);
    show('on demand', onDemand);
    const pre = await run(onDemand.kernels);
    show(`${onDemand.kernels.length} precompiled while building`, pre);
    if (pre.loss0 !== onDemand.loss0) throw new Error(`step-0 loss ${pre.loss0} precompiled, ${onDemand.loss0} on demand`);
  }
} finally {
  server.close();
}
