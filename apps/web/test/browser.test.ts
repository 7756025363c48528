// The built page in headless Chromium (WebGPU on its software adapter): it trains the demo model
// on the shipped dataset, survives a reload in the middle of the run (checkpoints in OPFS), and
// downloads an adapter that matches the one `peft-ts train` makes from the same model, data,
// seed and settings.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';
import { LoraModel } from '@peft-ts/lora/node';
import { loadModel } from '@peft-ts/models/node';
import { createRuntime, fromArray, noGrad, tidy, type Runtime } from '@peft-ts/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const app = resolve(fileURLToPath(new URL('..', import.meta.url)));
const root = resolve(app, '../..');
const site = join(app, 'dist');
const cli = join(root, 'apps/cli/dist/cli.js');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
/**
 * The screenshot of the finished run: into apps/web/test-results/ (ignored by git), and over the
 * README's docs/images/web.png when UPDATE_SCREENSHOT=1, so a test run leaves tracked files alone.
 */
const screenshot = process.env.UPDATE_SCREENSHOT === '1' ? join(root, 'docs/images/web.png') : join(app, 'test-results/web.png');

/** The run both sides make: the page's settings, and the same as `peft-ts train` flags. */
const SETTINGS = {
  method: 'lora',
  r: 8,
  alpha: 16,
  dropout: 0,
  targets: 'all-linear',
  lr: 5e-3,
  schedule: 'cosine',
  warmupSteps: 2,
  maxSteps: 12,
  batchSize: 4,
  gradientAccumulation: 1,
  maxLength: 128,
  validationSplit: 0.1,
  evalEvery: 6,
  saveEvery: 4,
  seed: 0,
} as const;
/** The page is reloaded once a step after this one has shown, to resume from the checkpoint of step 4. */
const RELOAD_AFTER = 5;

const CLI_FLAGS = [
  '--lora',
  ...['--r', SETTINGS.r, '--alpha', SETTINGS.alpha, '--dropout', SETTINGS.dropout, '--targets', SETTINGS.targets, '--lr', SETTINGS.lr],
  ...['--schedule', SETTINGS.schedule, '--warmup-steps', SETTINGS.warmupSteps, '--max-steps', SETTINGS.maxSteps, '--batch-size', SETTINGS.batchSize],
  ...['--grad-accum', SETTINGS.gradientAccumulation, '--max-length', SETTINGS.maxLength, '--validation-split', SETTINGS.validationSplit],
  ...['--eval-every', SETTINGS.evalEvery, '--save-every', SETTINGS.saveEvery, '--seed', SETTINGS.seed],
].map(String);

/**
 * Largest difference allowed between a tensor of the page's adapter and the CLI's, relative to
 * that tensor's largest magnitude. The two runs do the same arithmetic on different GPUs
 * (Chromium's SwiftShader with subgroups of 4, against Dawn on lavapipe in Node with subgroups of
 * 8), so sums are reduced in other orders and differ in the last bits of float32 (about 1e-7
 * relative). Adam divides each gradient by its own running magnitude, which amplifies such
 * differences where a gradient is tiny; over twelve steps they reached 1.7e-5 (an o_proj lora_A),
 * and the bound leaves room for that to grow six-fold. A real divergence (another data order,
 * seed, schedule step or initialisation) moves every tensor by 1e-2 or more.
 */
const RELATIVE_TOLERANCE = 1e-4;
/** Per-step training losses of the two runs, absolute (natural-log cross-entropy near 6.5; measured up to a few 1e-6). */
const LOSS_TOLERANCE = 1e-4;
/** The adapted model's logits with the page's adapter against the CLI's, both run here in Node. */
const LOGITS_TOLERANCE = 1e-5;

/** Logits of the demo model with the adapter in `adapterDir`, on a fixed sequence of token ids. */
async function adaptedLogits(rt: Runtime, modelDir: string, adapterDir: string): Promise<Float32Array> {
  const model = await loadModel(rt, modelDir);
  const lora = new LoraModel(model);
  await lora.loadAdapter(adapterDir);
  lora.train(false);
  const ids = Int32Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % model.config.vocabSize);
  const logits = noGrad(() => tidy(() => model.forward(fromArray(rt, ids, [1, ids.length], 'i32'))));
  const values = (await logits.toArray()) as Float32Array;
  logits.dispose();
  model.dispose();
  return values;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
};

/** A static file server for the built site, as any static host would serve it. */
function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(dir + sep) || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((done) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      done({ server, url: `http://127.0.0.1:${port}/` });
    });
  });
}

interface Tensors {
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  values: Map<string, Float32Array>;
}

/** The tensors of a safetensors file (F32 only, as both sides write). */
function readSafetensors(bytes: Uint8Array): Tensors {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  delete header.__metadata__;
  const values = new Map<string, Float32Array>();
  for (const [name, entry] of Object.entries(header as Tensors['header'])) {
    expect(entry.dtype, name).toBe('F32');
    const [start, end] = entry.data_offsets;
    // A copy: a Buffer's `slice` shares memory with Node's buffer pool, at another offset.
    const raw = new Uint8Array(end - start);
    raw.set(bytes.subarray(8 + n + start, 8 + n + end));
    values.set(name, new Float32Array(raw.buffer));
  }
  return { header: header as Tensors['header'], values };
}

interface PageState {
  finished: boolean;
  precompiled: { created: number; ms: number } | null;
  ready: boolean;
  loaded: boolean;
  done: boolean;
  error: string | null;
  steps: { step: number; loss: number; stepMs: number; sinceStartMs: number; tokensPerSecond: number }[];
  evals: { step: number; loss: number }[];
  summary: { steps: number; firstStepMs: number | null; meanStepMs: number | null; interrupted: boolean } | null;
  checkpoint: { step: number } | null;
  downloads: number;
}

const pageState = (page: Page) => page.evaluate(() => (window as unknown as { peftWeb: PageState }).peftWeb);

/** Polls the page's state until `ok` holds; fails early with the page's own error message. */
async function waitFor(page: Page, what: string, ok: (s: PageState) => boolean, timeoutMs: number): Promise<PageState> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await pageState(page).catch(() => null);
    if (s?.error) throw new Error(`page error while waiting for ${what}: ${s.error}`);
    if (s && ok(s)) return s;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (last state: ${JSON.stringify(s)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Fills the page's settings form. */
async function setSettings(page: Page, settings: Record<string, string | number>): Promise<void> {
  await page.evaluate((values: Record<string, string | number>) => {
    for (const [key, value] of Object.entries(values)) {
      const field = document.querySelector<HTMLInputElement | HTMLSelectElement>(`#settings [name="${key}"]`);
      if (!field) throw new Error(`no setting ${key}`);
      field.value = String(value);
    }
  }, settings);
}

/** Each optimizer step's training loss from a run's metrics.jsonl. */
function metricLosses(file: string): number[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { type: string; step: number; loss?: number })
    .filter((r) => r.type === 'train')
    .map((r) => r.loss ?? NaN);
}

describe('the web page in headless Chromium', () => {
  let server: Server | undefined;
  let url = '';
  let browser: Browser | undefined;
  const work = mkdtempSync(join(tmpdir(), 'peft-web-'));
  const downloads = join(work, 'downloads');
  const cliOut = join(work, 'cli-run');
  const pageLines: string[] = [];

  beforeAll(async () => {
    const needed: [string, string][] = [
      [join(site, 'index.html'), 'pnpm --filter @peft-ts/web build'],
      [join(site, 'demo/model/model.safetensors'), 'pnpm --filter @peft-ts/web build'],
      [cli, 'pnpm build'],
      [chromium, 'apt-get install -y chromium (or set CHROMIUM to a Chromium binary)'],
    ];
    for (const [path, how] of needed) {
      if (!existsSync(path)) throw new Error(`${path} is missing: run ${how} first`);
    }
    mkdirSync(downloads, { recursive: true });
    ({ server, url } = await serve(site));
    const args = ['--enable-unsafe-webgpu', '--headless=new', '--window-size=1280,1800'];
    if (process.getuid?.() === 0) args.push('--no-sandbox');
    browser = await puppeteer.launch({ executablePath: chromium, headless: true, args, userDataDir: join(work, 'profile'), protocolTimeout: 600_000 });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => (server ? server.close(done) : done(undefined)));
    rmSync(work, { recursive: true, force: true });
  });

  it('trains, resumes after a reload, and downloads the adapter peft-ts train makes', async () => {
    // The reference: the CLI on the same files the page serves, on this machine's GPU in Node.
    const started = Date.now();
    const ref = spawnSync(process.execPath, [cli, 'train', '--model', join(site, 'demo/model'), '--data', join(site, 'demo/example-alpaca.json'), '--output', cliOut, ...CLI_FLAGS], { encoding: 'utf8' });
    expect(ref.status, `peft-ts train failed:\n${ref.stderr}`).toBe(0);
    const cliSeconds = (Date.now() - started) / 1000;

    if (!browser) throw new Error('no browser');
    const page = await browser.newPage();
    page.on('console', (m) => pageLines.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => pageLines.push(`pageerror: ${String(e)}`));
    await page.setViewport({ width: 1280, height: 1800 });
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });

    try {
      await page.goto(url, { waitUntil: 'load' });
      await waitFor(page, 'the WebGPU device', (s) => s.ready, 60_000);
      await setSettings(page, SETTINGS);
      await page.click('#load');
      const loaded = await waitFor(page, 'the model and data', (s) => s.loaded, 60_000);
      expect(loaded.checkpoint).toBeNull();
      expect(await page.$$eval('#preview-list .example', (els) => els.length)).toBeGreaterThan(0);
      expect(await page.$$eval('#preview-list .example mark', (els) => els.length)).toBeGreaterThan(0);
      const trainStart = Date.now();
      await page.click('#train');
      const before = await waitFor(page, `step ${RELOAD_AFTER}`, (s) => s.steps.some((x) => x.step >= RELOAD_AFTER), 240_000);
      const firstStepMs = before.steps[0]?.stepMs ?? NaN;
      const startToFirstStepMs = before.steps[0]?.sinceStartMs ?? NaN;

      // A reload in the middle: the page picks the run up from its last checkpoint in OPFS.
      await page.reload({ waitUntil: 'load' });
      const resumedFrom = await waitFor(page, 'the saved run after the reload', (s) => s.loaded, 60_000);
      expect(resumedFrom.checkpoint?.step).toBe(4);
      const after = await waitFor(page, 'the end of training', (s) => s.done, 240_000);
      const trainSeconds = (Date.now() - trainStart) / 1000;
      expect(after.summary?.interrupted).toBe(false);
      expect(after.steps.map((x) => x.step)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
      // The kernels the run used before the reload were compiled in the background after it.
      expect(after.precompiled?.created ?? 0).toBeGreaterThan(10);

      // The loss falls: the last three steps average below the first three.
      const losses = [...before.steps.filter((x) => x.step <= 4), ...after.steps].map((x) => x.loss);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(losses).toHaveLength(SETTINGS.maxSteps);
      expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)) - 0.05);

      // Evaluation and generation from the trained adapter.
      await page.click('#evaluate');
      const evaluated = await page.waitForFunction(() => (window as unknown as { peftWeb: { evaluated: number | null } }).peftWeb.evaluated, { timeout: 120_000 });
      const valLoss = Number(await evaluated.jsonValue());
      expect(Number.isFinite(valLoss)).toBe(true);
      await page.click('#generate');
      await page.waitForFunction(() => !(window as unknown as { peftWeb: { generating: boolean } }).peftWeb.generating, { timeout: 120_000 });
      const generated = await page.evaluate(() => (window as unknown as { peftWeb: { generated: string } }).peftWeb.generated);

      await page.click('#download');
      const until = Date.now() + 30_000;
      while (!['adapter_config.json', 'adapter_model.safetensors'].every((f) => existsSync(join(downloads, f))) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
      await page.evaluate(() => window.scrollTo(0, 0));
      mkdirSync(dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: false });
      console.log(`screenshot: ${screenshot}`);

      // The adapter: PEFT's files, the same tensors as the CLI's within the stated tolerance.
      const cliAdapter = join(cliOut, 'adapter');
      const cliDir = existsSync(join(cliAdapter, 'adapter_model.safetensors')) ? cliAdapter : cliOut;
      expect(readdirSync(downloads).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
      const webConfig = JSON.parse(readFileSync(join(downloads, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      const cliConfig = JSON.parse(readFileSync(join(cliDir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      expect({ ...webConfig, base_model_name_or_path: null }).toEqual({ ...cliConfig, base_model_name_or_path: null });
      const webBytes = readFileSync(join(downloads, 'adapter_model.safetensors'));
      const cliBytes = readFileSync(join(cliDir, 'adapter_model.safetensors'));
      const web = readSafetensors(webBytes);
      const ref2 = readSafetensors(cliBytes);
      expect(Object.keys(web.header).sort()).toEqual(Object.keys(ref2.header).sort());
      let worst = 0;
      let worstName = '';
      for (const [name, a] of web.values) {
        const b = ref2.values.get(name) ?? new Float32Array();
        expect(web.header[name]?.shape, name).toEqual(ref2.header[name]?.shape);
        let scale = 0;
        let diff = 0;
        for (let i = 0; i < b.length; i++) {
          scale = Math.max(scale, Math.abs(b[i] ?? 0));
          diff = Math.max(diff, Math.abs((a[i] ?? NaN) - (b[i] ?? 0)));
        }
        const relative = diff / Math.max(scale, 1e-30);
        if (!(relative <= worst)) {
          worst = relative;
          worstName = name;
        }
      }
      // The same losses, step by step, as the CLI logged them in metrics.jsonl.
      const cliLosses = metricLosses(join(cliOut, 'metrics.jsonl'));
      expect(cliLosses).toHaveLength(SETTINGS.maxSteps);
      const lossDiff = Math.max(...losses.map((x, i) => Math.abs(x - (cliLosses[i] ?? NaN))));
      const identical = Buffer.compare(webBytes, cliBytes) === 0;
      const steady = after.steps.slice(1).map((x) => x.stepMs);
      const report = {
        firstStepMs: Math.round(firstStepMs),
        startToFirstStepMs: Math.round(startToFirstStepMs),
        firstStepAfterReloadMs: Math.round(after.steps[0]?.stepMs ?? NaN),
        precompiledAfterReload: after.precompiled,
        steadyStepMs: Math.round(mean(steady)),
        tokensPerSecond: Math.round(mean(after.steps.slice(1).map((x) => x.tokensPerSecond))),
        browserTrainSeconds: Number(trainSeconds.toFixed(1)),
        cliSeconds: Number(cliSeconds.toFixed(1)),
        losses: losses.map((x) => Number(x.toFixed(4))),
        validationLoss: Number(valLoss.toFixed(4)),
        generated: generated.slice(0, 60),
        adapterBytesIdentical: identical,
        worstRelativeDifference: worst,
        worstTensor: worstName,
        worstLossDifference: lossDiff,
      };
      writeFileSync(join(work, 'report.json'), JSON.stringify(report));
      console.log(`web page in Chromium: ${JSON.stringify(report, null, 2)}`);
      expect(lossDiff).toBeLessThanOrEqual(LOSS_TOLERANCE);
      expect(worst).toBeLessThanOrEqual(RELATIVE_TOLERANCE);
      // What the adapter does: the model's logits with either adapter, computed the same way.
      const rt = await createRuntime();
      const webLogits = await adaptedLogits(rt, join(site, 'demo/model'), downloads);
      const cliLogits = await adaptedLogits(rt, join(site, 'demo/model'), cliDir);
      let logitsDiff = webLogits.length === cliLogits.length ? 0 : Infinity;
      for (let i = 0; i < webLogits.length; i++) logitsDiff = Math.max(logitsDiff, Math.abs((webLogits[i] ?? NaN) - (cliLogits[i] ?? NaN)));
      console.log(`adapted logits, page's adapter vs the CLI's: max difference ${logitsDiff.toExponential(2)} over ${webLogits.length} logits`);
      expect(logitsDiff).toBeLessThanOrEqual(LOGITS_TOLERANCE);

      // After a reload the finished run's adapter still downloads, the same bytes, without training again.
      const again = join(work, 'downloads-after-reload');
      mkdirSync(again, { recursive: true });
      await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: again });
      await page.reload({ waitUntil: 'load' });
      // The settings come back; loading the same model and data finds the finished run.
      await waitFor(page, 'the page after a reload', (s) => s.ready, 60_000);
      await page.click('#load');
      const reloaded = await waitFor(page, 'the finished run after a reload', (s) => s.loaded, 60_000);
      expect(reloaded.finished).toBe(true);
      expect(reloaded.checkpoint).toBeNull();
      expect(await page.$eval('#download', (b) => (b as HTMLButtonElement).disabled)).toBe(false);
      await page.click('#download');
      const until2 = Date.now() + 30_000;
      while (!['adapter_config.json', 'adapter_model.safetensors'].every((f) => existsSync(join(again, f))) && Date.now() < until2) await new Promise((r) => setTimeout(r, 200));
      expect(Buffer.compare(readFileSync(join(again, 'adapter_model.safetensors')), webBytes)).toBe(0);
      expect(readFileSync(join(again, 'adapter_config.json'), 'utf8')).toBe(readFileSync(join(downloads, 'adapter_config.json'), 'utf8'));
      // ... and evaluates and generates with that adapter, read back from storage: the same validation loss.
      await page.click('#evaluate');
      const reevaluated = await page.waitForFunction(() => (window as unknown as { peftWeb: { evaluated: number | null } }).peftWeb.evaluated, { timeout: 120_000 });
      expect(Math.abs(Number(await reevaluated.jsonValue()) - valLoss)).toBeLessThanOrEqual(1e-6);
      await page.click('#generate');
      await page.waitForFunction(() => !(window as unknown as { peftWeb: { generating: boolean } }).peftWeb.generating, { timeout: 120_000 });
      expect(await page.evaluate(() => (window as unknown as { peftWeb: { generated: string } }).peftWeb.generated)).toBe(generated);
    } catch (error) {
      console.error(pageLines.slice(-40).join('\n'));
      await page.screenshot({ path: join(tmpdir(), 'peft-web-failure.png') }).catch(() => undefined);
      throw error;
    }
  });
  it('trains QLoRA (an NF4 base quantized on load) with the losses peft-ts train --qlora logs', async () => {
    // Three steps, no validation split (so no evaluation) and no checkpoint: the NF4 kernels' compilation is most of the cost.
    const steps = 3;
    const changes: Record<string, string> = { '--max-steps': String(steps), '--validation-split': '0', '--save-every': '1000' };
    const qOut = join(work, 'cli-qlora');
    const flags = CLI_FLAGS.map((f, i) => (f === '--lora' ? '--qlora' : (changes[CLI_FLAGS[i - 1] ?? ''] ?? f)));
    const cliStarted = Date.now();
    const ref = spawnSync(process.execPath, [cli, 'train', '--model', join(site, 'demo/model'), '--data', join(site, 'demo/example-alpaca.json'), '--output', qOut, ...flags], { encoding: 'utf8' });
    expect(ref.status, `peft-ts train --qlora failed:\n${ref.stderr}`).toBe(0);
    const cliSeconds = (Date.now() - cliStarted) / 1000;

    if (!browser) throw new Error('no browser');
    // Storage of its own, so that the first test's saved run plays no part.
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => pageLines.push(`pageerror: ${String(e)}`));
    try {
      await page.goto(url, { waitUntil: 'load' });
      await waitFor(page, 'the WebGPU device', (s) => s.ready, 60_000);
      await setSettings(page, { ...SETTINGS, method: 'qlora', maxSteps: steps, validationSplit: 0, saveEvery: 1000 });
      const started = Date.now();
      await page.click('#load');
      await waitFor(page, 'the model and data', (s) => s.loaded, 60_000);
      await page.click('#train');
      const done = await waitFor(page, 'the end of QLoRA training', (s) => s.done, 240_000);
      const losses = done.steps.map((x) => x.loss);
      const cliLosses = metricLosses(join(qOut, 'metrics.jsonl'));
      expect(losses).toHaveLength(steps);
      expect(cliLosses).toHaveLength(steps);
      const lossDiff = Math.max(...losses.map((x, i) => Math.abs(x - (cliLosses[i] ?? NaN))));
      console.log(
        `QLoRA in Chromium: losses ${losses.map((x) => x.toFixed(4)).join(' ')}, first step ${Math.round(done.steps[0]?.stepMs ?? NaN)} ms, ` +
          `then ${done.steps.slice(1).map((x) => Math.round(x.stepMs)).join(', ')} ms; load and train ${((Date.now() - started) / 1000).toFixed(1)} s ` +
          `(the CLI: ${cliSeconds.toFixed(1)} s); worst loss difference from the CLI ${lossDiff}`,
      );
      expect(lossDiff).toBeLessThanOrEqual(LOSS_TOLERANCE);
    } catch (error) {
      console.error(pageLines.slice(-40).join('\n'));
      throw error;
    } finally {
      await context.close();
    }
  });
  it('loads a model folder and a dataset file chosen with the file inputs', async () => {
    if (!browser) throw new Error('no browser');
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    try {
      await page.goto(url, { waitUntil: 'load' });
      await waitFor(page, 'the WebGPU device', (s) => s.ready, 60_000);
      const model = join(site, 'demo/model');
      const modelInput = (await page.$('#model-input')) as ElementHandle<HTMLInputElement> | null;
      const dataInput = (await page.$('#data-input')) as ElementHandle<HTMLInputElement> | null;
      if (!modelInput || !dataInput) throw new Error('the page has no file inputs');
      // A folder input takes the folder itself; its files come with paths under the folder's name.
      await modelInput.uploadFile(model);
      await dataInput.uploadFile(join(site, 'demo/example-alpaca.json'));
      expect(await page.$eval('input[name="model"]:checked', (el) => el.value)).toBe('files');
      expect(await page.$eval('input[name="data"]:checked', (el) => el.value)).toBe('file');
      await page.click('#load');
      await waitFor(page, 'the chosen model and data', (s) => s.loaded, 60_000);
      const status = await page.$eval('#load-status', (el) => el.textContent ?? '');
      expect(status).toMatch(/^model: LlamaForCausalLM, 2 layers, hidden 64, vocab 1024/);
      expect(await page.$eval('#model-name', (el) => el.textContent ?? '')).toMatch(/^model: 7 files, 0\.9 MiB$/);
      expect(status).toMatch(/example-alpaca\.json, 255 examples \(229 train, 26 validation\)/);
      expect(await page.$$eval('#preview-list .example mark', (els) => els.length)).toBeGreaterThan(0);
    } finally {
      await context.close();
    }
  });
});
