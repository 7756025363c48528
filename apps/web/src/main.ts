// The page: choices and settings, a live view of the worker's training, and the adapter's
// download. All GPU work happens in the worker, so the page stays responsive while it trains.
import { lossCurveSvg, type CurvePoint } from '@peft-ts/trainer';
import { DEFAULT_SETTINGS, type DataChoice, type FromWorker, type ModelChoice, type ToWorker, type TrainSettings } from './protocol.js';
import { pickDirectory, filesFromInput } from './pick.js';

/** What the page remembers across a reload (the checkpoints themselves are in OPFS). */
interface Saved {
  settings: TrainSettings;
  model: 'demo' | 'files';
  data: 'demo' | 'file';
  /** True while a run is under way: a reload continues it from its last checkpoint. */
  training: boolean;
}
const STORAGE_KEY = 'peft-ts-web';

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: no element #${id}`);
  return el;
}
const button = (id: string) => $(id) as HTMLButtonElement;
const input = (id: string) => $(id) as HTMLInputElement;

const settingsForm = $('settings');
const logEl = $('log');
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const send = (message: ToWorker) => worker.postMessage(message);

let pickedModel: ModelChoice | null = null;
const train: CurvePoint[] = [];
const validation: CurvePoint[] = [];
let loaded = false;
let running = false;
let saved: Saved = readSaved();
let chartPending = false;

/** State the headless test reads (window.peftWeb), beside what the page shows. */
const state = {
  ready: false,
  loaded: false,
  running: false,
  done: false,
  error: null as string | null,
  steps: [] as { step: number; loss: number; stepMs: number; sinceStartMs: number; tokensPerSecond: number }[],
  evals: [] as { step: number; loss: number }[],
  summary: null as Extract<FromWorker, { type: 'done' }> | null,
  evaluated: null as number | null,
  generated: '',
  generating: false,
  checkpoint: null as { step: number } | null,
  downloads: 0,
  precompiled: null as { created: number; ms: number } | null,
  /** A finished run's adapter is in the browser's storage (it downloads without training again). */
  finished: false,
};
(window as unknown as { peftWeb: typeof state }).peftWeb = state;

function readSaved(): Saved {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (raw) {
      const value = JSON.parse(raw) as Partial<Saved>;
      return { settings: { ...DEFAULT_SETTINGS, ...value.settings }, model: value.model ?? 'demo', data: value.data ?? 'demo', training: value.training ?? false };
    }
  } catch {
    // A damaged entry is the same as none.
  }
  return { settings: { ...DEFAULT_SETTINGS }, model: 'demo', data: 'demo', training: false };
}

function writeSaved(): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(saved));
}

function log(line: string, error = false): void {
  const row = document.createElement('div');
  row.textContent = line;
  if (error) row.className = 'error';
  logEl.append(row);
  logEl.scrollTop = logEl.scrollHeight;
}

// ---- settings ------------------------------------------------------------------------------

function fillSettings(s: TrainSettings): void {
  for (const [key, value] of Object.entries(s)) {
    const field = settingsForm.querySelector<HTMLInputElement | HTMLSelectElement>(`[name="${key}"]`);
    if (field) field.value = String(value);
  }
}

function readSettings(): TrainSettings {
  const s: Record<string, unknown> = {};
  for (const [key, fallback] of Object.entries(DEFAULT_SETTINGS)) {
    const field = settingsForm.querySelector<HTMLInputElement | HTMLSelectElement>(`[name="${key}"]`);
    const raw = field?.value ?? '';
    if (typeof fallback === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new Error(`Settings: ${key}: expected a number, got ${JSON.stringify(raw)}`);
      s[key] = n;
    } else s[key] = raw;
  }
  return s as unknown as TrainSettings;
}

function radio(name: string): string {
  return document.querySelector<HTMLInputElement>(`input[name="${name}"]:checked`)?.value ?? 'demo';
}

function setRadio(name: string, value: string): void {
  const el = document.querySelector<HTMLInputElement>(`input[name="${name}"][value="${value}"]`);
  if (el) el.checked = true;
}

// ---- display -------------------------------------------------------------------------------

function setButtons(): void {
  button('load').disabled = running;
  button('train').disabled = !loaded || running;
  button('stop').disabled = !running;
  button('forget').disabled = running || (state.checkpoint === null && !state.finished);
  button('evaluate').disabled = !loaded || running;
  button('generate').disabled = !loaded || running || state.generating;
  button('download').disabled = !loaded || running || (state.summary === null && !state.finished);
  state.running = running;
}

function drawChart(): void {
  if (chartPending) return;
  chartPending = true;
  requestAnimationFrame(() => {
    chartPending = false;
    $('chart').innerHTML = lossCurveSvg({ train, validation }, { title: 'loss' });
  });
}

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`);

function showPreview(data: Extract<FromWorker, { type: 'loaded' }>['data']): void {
  const list = $('preview-list');
  list.replaceChildren();
  for (const example of data.preview) {
    const box = document.createElement('div');
    box.className = 'example';
    const source = document.createElement('span');
    source.className = 'source';
    source.textContent = `${example.source} · ${example.tokens} tokens, ${example.trainedTokens} trained`;
    box.append(source);
    for (const [text, trained] of example.runs) {
      const part = document.createElement(trained ? 'mark' : 'span');
      part.textContent = text;
      box.append(part);
    }
    list.append(box);
  }
  $('preview').hidden = false;
}

// ---- worker messages -----------------------------------------------------------------------

worker.addEventListener('message', (event: MessageEvent<FromWorker>) => {
  const m = event.data;
  switch (m.type) {
    case 'log':
      log(m.line);
      break;
    case 'precompiled':
      state.precompiled = { created: m.created, ms: m.ms };
      break;
    case 'device':
      $('device').textContent = `WebGPU: ${m.device.description}${m.device.software ? ' (software)' : ''}${m.device.subgroupSize ? `, subgroups of ${m.device.subgroupSize}` : ''}${m.device.features.includes('shader-f16') ? ', f16' : ''}`;
      state.ready = true;
      break;
    case 'loaded': {
      loaded = true;
      state.loaded = true;
      state.checkpoint = m.checkpoint ? { step: m.checkpoint.step } : null;
      state.finished = m.finished;
      $('load-status').textContent = `${m.model.summary}; ${m.model.trainable}. Data: ${m.data.name}, ${m.data.examples} examples (${m.data.train} train, ${m.data.validation} validation), ${m.totalSteps} steps.`;
      showPreview(m.data);
      $('resume-note').textContent = m.checkpoint
        ? `A saved run reached step ${m.checkpoint.step}: Train continues from it.`
        : m.finished
          ? 'A finished run is saved in this browser: its adapter downloads below; Train starts a new run.'
          : '';
      if (m.checkpoint) {
        train.splice(0, train.length, ...m.checkpoint.train);
        validation.splice(0, validation.length, ...m.checkpoint.validation);
        drawChart();
      }
      setButtons();
      if (saved.training && m.checkpoint) startTraining(true);
      break;
    }
    case 'step': {
      train.push({ step: m.step, value: m.loss });
      state.steps.push({ step: m.step, loss: m.loss, stepMs: m.stepMs, sinceStartMs: m.sinceStartMs, tokensPerSecond: m.tokensPerSecond });
      if (state.steps.length === 1) $('stat-first').textContent = ms(m.stepMs);
      $('stat-step').textContent = `${m.step} / ${m.totalSteps}`;
      $('stat-loss').textContent = fmt(m.loss);
      $('stat-tps').textContent = m.tokensPerSecond.toFixed(0);
      $('stat-steptime').textContent = ms(m.stepMs);
      (input('progress') as unknown as HTMLProgressElement).value = m.step / m.totalSteps;
      drawChart();
      break;
    }
    case 'eval':
      validation.push({ step: m.step, value: m.loss });
      state.evals.push({ step: m.step, loss: m.loss });
      $('stat-val').textContent = fmt(m.loss);
      drawChart();
      break;
    case 'saved':
      state.checkpoint = { step: m.step };
      break;
    case 'done':
      running = false;
      state.summary = m;
      state.done = true;
      if (!m.interrupted) state.checkpoint = null;
      $('resume-note').textContent = m.interrupted ? `Paused at step ${m.steps}: Train continues from there, here or after a reload.` : 'Finished: the adapter is ready below.';
      saved.training = false;
      writeSaved();
      if (m.meanStepMs !== null) $('stat-steptime').textContent = ms(m.meanStepMs);
      log(m.interrupted ? `paused at step ${m.steps}; a checkpoint is saved in this browser` : `done: ${m.steps} steps in ${m.seconds.toFixed(1)} s, loss ${m.finalLoss?.toFixed(4) ?? 'n/a'}`);
      setButtons();
      break;
    case 'evaluated':
      state.evaluated = m.loss;
      $('eval-result').textContent = `validation loss ${fmt(m.loss)} over ${m.tokens} tokens`;
      setButtons();
      break;
    case 'text':
      state.generated += m.delta;
      $('gen-output').textContent = state.generated;
      if (m.done) {
        state.generating = false;
        setButtons();
      }
      break;
    case 'adapter':
      for (const file of m.files) {
        const url = URL.createObjectURL(new Blob([file.bytes as Uint8Array<ArrayBuffer>], { type: file.name.endsWith('.json') ? 'application/json' : 'application/octet-stream' }));
        const a = document.createElement('a');
        a.href = url;
        a.download = file.name;
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      }
      state.downloads += 1;
      break;
    case 'error':
      running = false;
      state.generating = false;
      state.error = m.message;
      log(m.message, true);
      setButtons();
      break;
  }
});
worker.addEventListener('error', (event) => {
  state.error = event.message;
  log(`worker: ${event.message}`, true);
});

// ---- actions -------------------------------------------------------------------------------

function load(auto = false): void {
  let settings: TrainSettings;
  try {
    settings = readSettings();
  } catch (error) {
    log((error as Error).message, true);
    return;
  }
  let model: ModelChoice = { kind: 'demo' };
  if (radio('model') === 'files') {
    if (!pickedModel) {
      log('Model: choose a model folder first (or use the built-in demo model)', true);
      return;
    }
    model = pickedModel;
  }
  let data: DataChoice = { kind: 'demo' };
  if (radio('data') === 'file') {
    const file = input('data-input').files?.[0];
    // After a reload the file input is empty: the run's copy in OPFS stands in for it.
    if (!file && auto) data = { kind: 'saved' };
    else if (!file) {
      log('Data: choose a dataset file first (or use the shipped example dataset)', true);
      return;
    }
    else data = { kind: 'file', file };
  }
  saved = { ...saved, settings, model: model.kind, data: data.kind === 'demo' ? 'demo' : 'file' };
  writeSaved();
  loaded = false;
  state.loaded = false;
  state.summary = null;
  state.finished = false;
  $('load-status').textContent = 'Loading…';
  setButtons();
  send({ type: 'load', model, data, settings });
}

function startTraining(resume: boolean): void {
  running = true;
  state.done = false;
  state.error = null;
  if (!resume) {
    train.length = 0;
    validation.length = 0;
    // A new run replaces the saved one, its adapter included.
    state.finished = false;
  }
  saved.training = true;
  writeSaved();
  setButtons();
  send({ type: 'train', resume });
}

button('load').addEventListener('click', () => load());
button('train').addEventListener('click', () => startTraining(state.checkpoint !== null));
button('stop').addEventListener('click', () => {
  saved.training = false;
  writeSaved();
  send({ type: 'stop' });
});
button('forget').addEventListener('click', () => {
  state.checkpoint = null;
  state.finished = false;
  $('resume-note').textContent = '';
  send({ type: 'forget' });
  setButtons();
});
button('evaluate').addEventListener('click', () => {
  $('eval-result').textContent = 'evaluating…';
  send({ type: 'evaluate' });
});
button('generate').addEventListener('click', () => {
  state.generated = '';
  state.generating = true;
  $('gen-output').textContent = '';
  setButtons();
  send({ type: 'generate', instruction: input('gen-instruction').value, input: input('gen-input').value, maxNewTokens: Number(input('gen-max').value) || 24 });
});
button('download').addEventListener('click', () => send({ type: 'export' }));

button('pick-model').addEventListener('click', () => {
  void pickDirectory().then(
    (choice) => {
      if (choice === undefined) input('model-input').click();
      else if (choice !== null) choseModel(choice);
    },
    (error: unknown) => log(`Model: ${(error as Error).message}`, true),
  );
});
input('model-input').addEventListener('change', () => {
  const choice = filesFromInput(input('model-input').files);
  if (choice) choseModel(choice);
});
input('data-input').addEventListener('change', () => setRadio('data', 'file'));

function choseModel(choice: Extract<ModelChoice, { kind: 'files' }>): void {
  pickedModel = choice;
  setRadio('model', 'files');
  const bytes = choice.files.reduce((sum, f) => sum + f.file.size, 0);
  $('model-name').textContent = `${choice.name}: ${choice.files.length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

fillSettings(saved.settings);
setRadio('model', saved.model);
setRadio('data', saved.data);
setButtons();
// A run under way when the page was closed continues (demo model; a picked folder must be picked again).
if (saved.training && saved.model === 'demo') {
  log('continuing the run that was under way when the page was closed');
  load(true);
}
