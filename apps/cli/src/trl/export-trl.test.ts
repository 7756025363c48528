// `peft-ts export trl`: the recipe files against golden copies for three configs, the script
// compiled by Python where python3 exists, every config key mapped or refused, refusals and
// usage errors with their exit codes, and the trainer README's table in step with the mapping.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { renderExample, type Example, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { resolveFinetuneConfig } from '@peft-ts/trainer';
import { LLAMA2_TOKENIZER_DIR } from '../testing/tiny-model.js';
import { exportTrl } from '../commands/export-trl.js';
import { exitCodeFor, EXIT } from '../errors.js';
import { checkTrlMapping, mappedKeys, mappingTableMarkdown, TRL_MAPPING } from './mapping.js';
import { computeDtype } from './recipe.js';

const GOLDEN = fileURLToPath(new URL('./golden/', import.meta.url));
const CASES = ['lora', 'qlora-paged8bit', 'chat-pack'];
const FILES = ['train.py', 'accelerate_config.yaml', 'deepspeed_zero3.json', 'README.md'];
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function hasPython(): boolean {
  return spawnSync('python3', ['--version']).status === 0;
}

async function exportCase(name: string, extra: string[] = []): Promise<{ dir: string; stderr: string; stdout: string }> {
  const dir = join(await mkdtemp(join(tmpdir(), 'peft-ts-trl-')), 'recipe');
  let stderr = '';
  let stdout = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  try {
    expect(await exportTrl(['--config', join(GOLDEN, name, 'run.yaml'), '--out', dir, ...extra])).toBe(0);
  } finally {
    vi.restoreAllMocks();
  }
  return { dir, stderr, stdout };
}

async function failure(argv: string[]): Promise<{ code: number; message: string }> {
  try {
    await exportTrl(argv);
  } catch (error) {
    return { code: exitCodeFor(error), message: (error as Error).message };
  }
  throw new Error('expected the export to fail');
}

afterEach(() => vi.restoreAllMocks());

describe('peft-ts export trl', () => {
  it.each(CASES)('writes the golden recipe for %s', async (name) => {
    const { dir } = await exportCase(name);
    expect(readdirSync(dir).sort()).toEqual([...FILES].sort());
    for (const file of FILES) {
      const got = await readFile(join(dir, file), 'utf8');
      const golden = join(GOLDEN, name, file);
      if (UPDATE) writeFileSync(golden, got);
      expect(got, `${name}/${file}`).toBe(readFileSync(golden, 'utf8'));
    }
  });

  it.runIf(hasPython())('writes a train.py that Python compiles, for every golden config', async () => {
    const adapter = await mkdtemp(join(tmpdir(), 'peft-ts-adapter-'));
    await writeFile(join(adapter, 'adapter_config.json'), JSON.stringify({ r: 16, lora_alpha: 32 }));
    await writeFile(join(adapter, 'adapter_model.safetensors'), '');
    // The golden configs, and one starting from an adapter (the PeftModel path).
    const dirs: string[] = [(await exportCase('chat-pack', ['--init-adapter', adapter])).dir];
    for (const name of CASES) {
      const { dir } = await exportCase(name);
      dirs.push(dir);
      const json = readFileSync(join(dir, 'deepspeed_zero3.json'), 'utf8');
      expect((JSON.parse(json) as { zero_optimization: { stage: number } }).zero_optimization.stage).toBe(3);
    }
    execFileSync('python3', ['-m', 'py_compile', ...dirs.map((d) => join(d, 'train.py'))], { stdio: 'pipe' });
  });

  it('maps settings one to one into the script', () => {
    const lora = readFileSync(join(GOLDEN, 'lora', 'train.py'), 'utf8');
    expect(lora).toContain('quantization = None');
    expect(lora).toContain('target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]');
    expect(lora).toContain('optim="adamw_torch"');
    expect(lora).toContain('warmup_steps=10,');
    expect(lora).toContain('lr_scheduler_type="linear"');
    expect(lora).toContain('save_strategy="no"');
    const qlora = readFileSync(join(GOLDEN, 'qlora-paged8bit', 'train.py'), 'utf8');
    expect(qlora).toContain('bnb_4bit_quant_type="nf4"');
    expect(qlora).toContain('bnb_4bit_use_double_quant=True');
    expect(qlora).toContain('optim="paged_adamw_8bit"');
    expect(qlora).toContain('max_steps=2000');
    expect(qlora).toContain('warmup_steps=0.03,');
    expect(qlora).toContain('EarlyStoppingCallback(early_stopping_patience=3)');
    expect(qlora).toContain('save_steps=100,');
    expect(qlora).toContain('modules_to_save=["embed_tokens"]');
    const chat = readFileSync(join(GOLDEN, 'chat-pack', 'train.py'), 'utf8');
    expect(chat).toContain('packing=True');
    expect(chat).toContain('attn_implementation="flash_attention_2"');
    expect(chat).toContain('TEMPLATE = "model"');
    expect(chat).toContain('optim="paged_adamw_32bit"');
    expect(chat).toContain('fp16=True');
  });

  it('names every nearest equivalent on stderr and in README.md', async () => {
    const { dir, stderr } = await exportCase('chat-pack');
    const readme = await readFile(join(dir, 'README.md'), 'utf8');
    for (const key of ['optimizerBudgetMb 512', 'activationDtype f16', 'validationSplit 0.05']) {
      expect(stderr).toContain(key);
      expect(readme).toContain(key);
    }
    expect((await exportCase('lora')).stderr).toBe('');
  });

  it('starts from an adapter with --init-adapter, and checks it', async () => {
    const adapter = await mkdtemp(join(tmpdir(), 'peft-ts-adapter-'));
    await writeFile(join(adapter, 'adapter_config.json'), JSON.stringify({ r: 8, lora_alpha: 16, peft_type: 'LORA' }));
    await writeFile(join(adapter, 'adapter_model.safetensors'), '');
    const { dir } = await exportCase('lora', ['--init-adapter', adapter]);
    const script = await readFile(join(dir, 'train.py'), 'utf8');
    expect(script).toContain(`INIT_ADAPTER = ${JSON.stringify(adapter)}`);
    expect(script).toContain('PeftModel.from_pretrained(model, INIT_ADAPTER, is_trainable=True)');

    const wrong = await failure(['--config', join(GOLDEN, 'qlora-paged8bit', 'run.yaml'), '--out', join(adapter, 'x'), '--init-adapter', adapter]);
    expect(wrong).toEqual({ code: EXIT.input, message: expect.stringMatching(/adapter_config\.json: r: expected r 16 as in the config/) as unknown });
    const missing = await failure(['--config', join(GOLDEN, 'lora', 'run.yaml'), '--out', join(adapter, 'y'), '--init-adapter', join(adapter, 'nope')]);
    expect(missing.code).toBe(EXIT.input);
    expect(missing.message).toMatch(/--init-adapter: .*nope: expected a PEFT adapter directory/);
  });

  it('refuses what TRL cannot express, naming the file and key (exit 3)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peft-ts-trl-refuse-'));
    const cases: Array<[string, RegExp]> = [
      ['resume: latest', /run\.yaml: resume: expected null: TRL cannot continue .* --init-adapter/],
      ['blocksize: 128', /run\.yaml: blocksize: expected 64/],
      ['optimizer: sgd\noptimizer_budget_mb: 100', /run\.yaml: optimizerBudgetMb: expected null with optimizer sgd/],
      ['lr: -1', /run\.yaml: lr: expected a number in \(0, 1\]/],
    ];
    for (const [yaml, message] of cases) {
      const config = join(dir, 'run.yaml');
      await writeFile(config, `model: m\ndata: d.jsonl\n${yaml}\n`);
      const result = await failure(['--config', config, '--out', join(dir, 'recipe')]);
      expect(result.code, yaml).toBe(EXIT.input);
      expect(result.message, yaml).toMatch(message);
      expect(result.message).not.toContain('\n');
      expect(existsSync(join(dir, 'recipe'))).toBe(false);
    }
  });

  it('answers usage errors with exit 2, and refuses an existing --out without --overwrite', async () => {
    const config = join(GOLDEN, 'lora', 'run.yaml');
    expect((await failure(['--out', 'x'])).code).toBe(EXIT.usage);
    expect((await failure(['--config', config])).code).toBe(EXIT.usage);
    expect((await failure(['--config', config, '--out', 'x', '--bogus'])).code).toBe(EXIT.usage);
    expect((await failure(['--config', config, '--out', 'x', 'extra'])).code).toBe(EXIT.usage);
    const { dir } = await exportCase('lora');
    const again = await failure(['--config', config, '--out', dir]);
    expect(again.code).toBe(EXIT.input);
    expect(again.message).toMatch(/--out: .*pass --overwrite/);
    await mkdir(dir, { recursive: true });
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(await exportTrl(['--config', config, '--out', dir, '--overwrite'])).toBe(0);
  });
});

// Stand-ins for the Python libraries, so the script's data functions run without them.
const STUBS: Record<string, string> = {
  'torch.py': 'float32 = "float32"\nfloat16 = "float16"\nbfloat16 = "bfloat16"\n',
  'accelerate.py': 'class PartialState: pass\n',
  'datasets.py': 'class Dataset:\n    @staticmethod\n    def from_list(rows):\n        return rows\n',
  'peft.py': 'class LoraConfig: pass\nclass PeftModel: pass\n',
  'transformers.py': 'class AutoModelForCausalLM: pass\nclass AutoTokenizer: pass\nclass BitsAndBytesConfig: pass\nclass EarlyStoppingCallback: pass\ndef set_seed(seed): pass\n',
  'trl.py': 'class SFTConfig: pass\nclass SFTTrainer: pass\n',
};

/** Runs the recipe's load_rows on a data file (a tokenizer without a chat template) and returns its rows. */
async function pythonRows(trainPy: string, records: unknown[], template: string): Promise<{ template: string; rows: Array<Record<string, unknown>> }> {
  const dir = await mkdtemp(join(tmpdir(), 'peft-ts-trl-py-'));
  for (const [name, text] of Object.entries(STUBS)) await writeFile(join(dir, name), text);
  await writeFile(join(dir, 'data.jsonl'), records.map((r) => JSON.stringify(r)).join('\n'));
  const driver = [
    'import importlib.util, json, sys',
    `spec = importlib.util.spec_from_file_location("recipe", ${JSON.stringify(trainPy)})`,
    'recipe = importlib.util.module_from_spec(spec)',
    'spec.loader.exec_module(recipe)',
    `recipe.DATA = ${JSON.stringify(join(dir, 'data.jsonl'))}`,
    `recipe.TEMPLATE = ${JSON.stringify(template)}`,
    'class Tok:\n    chat_template = None',
    'template, rows = recipe.load_rows(Tok())',
    'print(json.dumps({"template": template, "rows": rows}))',
  ].join('\n');
  const stdout = execFileSync('python3', ['-c', driver], { env: { ...process.env, PYTHONPATH: dir, PYTHONDONTWRITEBYTECODE: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(stdout) as { template: string; rows: Array<Record<string, unknown>> };
}

describe.runIf(hasPython())('the recipe\'s data mapping, run by python3', () => {
  it('gives Alpaca and Dolly records the prompt text train renders, and the response as the completion', async () => {
    const trainPy = join(GOLDEN, 'lora', 'train.py');
    const records = [
      { instruction: 'Classify {input} here.', input: 'I love it! {instruction}', output: 'positive' },
      { instruction: 'Say hi.', output: 'hi' },
    ];
    const { template, rows } = await pythonRows(trainPy, [...records, { instruction: 'Dolly asks.', context: 'ctx', response: 'answer' }], 'auto');
    expect(template).toBe('alpaca');
    const tokenizer = await tokenizerFromDir(LLAMA2_TOKENIZER_DIR);
    const examples: Example[] = [
      { kind: 'instruction', instruction: 'Classify {input} here.', input: 'I love it! {instruction}', output: 'positive' },
      { kind: 'instruction', instruction: 'Say hi.', input: '', output: 'hi' },
      { kind: 'instruction', instruction: 'Dolly asks.', input: 'ctx', output: 'answer' },
    ];
    examples.forEach((example, i) => {
      const r = renderExample(example, tokenizer, { template: 'alpaca' });
      const prompt = r.segments.filter((s) => !s.trained).map((s) => r.text.slice(s.start, s.end)).join('');
      const trained = r.segments.filter((s) => s.trained).map((s) => r.text.slice(s.start, s.end)).join('');
      // TRL appends the EOS token to the completion, as train appends it to the response.
      expect(rows[i]).toEqual({ prompt, completion: trained.slice(0, -(tokenizer.eosToken ?? '').length) });
      expect(trained.endsWith(tokenizer.eosToken ?? '\0')).toBe(true);
    });
  });

  it('turns chat and ShareGPT records into TRL messages, and lists invalid records', async () => {
    const trainPy = join(GOLDEN, 'chat-pack', 'train.py');
    const chat = { messages: [{ role: 'system', content: '' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] };
    const sharegpt = { conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }] };
    const { template, rows } = await pythonRows(trainPy, [chat, sharegpt, { messages: [{ role: 'user', content: 'no answer' }] }], 'model');
    expect(template).toBe('model');
    expect(rows).toEqual([chat, { messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }] }]);
    // The same records with ON_INVALID "error" (the lora recipe): the script stops, naming the record.
    await expect(pythonRows(join(GOLDEN, 'lora', 'train.py'), [chat, { messages: [{ role: 'user', content: 'no answer' }] }], 'model')).rejects.toThrow(/data\.jsonl:2: messages: expected at least one assistant turn/);
  });
});

describe('the TRL mapping', () => {
  it('maps or refuses every key of the config schema, and no other', () => {
    // The schema as resolveFinetuneConfig validates it: a new key must be added to TRL_MAPPING.
    const schemaKeys = Object.keys(resolveFinetuneConfig({ model: 'm', data: 'd' })).sort();
    expect(mappedKeys().sort()).toEqual(schemaKeys);
    for (const [key, m] of Object.entries(TRL_MAPPING)) {
      expect(m.to.length, key).toBeGreaterThan(0);
      expect(m.difference.length, key).toBeGreaterThan(0);
    }
  });

  it('passes the defaults with no refusal', () => {
    const c = resolveFinetuneConfig({ model: 'm', data: 'd' });
    expect(checkTrlMapping(c, 'run.yaml')).toEqual([expect.stringMatching(/^validationSplit 0.05/)]);
  });

  it('computes in f32 as peft-ts does, except where FlashAttention or f16 activations need 16 bits', () => {
    const c = (raw: Record<string, unknown>) => resolveFinetuneConfig({ model: 'm', data: 'd', validationSplit: 0, ...raw });
    expect(computeDtype(c({}))).toBe('torch.float32');
    expect(checkTrlMapping(c({}), 'run.yaml')).toEqual([]);
    expect(computeDtype(c({ pack: true }))).toBe('torch.bfloat16');
    expect(checkTrlMapping(c({ pack: true }), 'run.yaml')).toEqual([expect.stringMatching(/^activationDtype f32 with pack: .* bf16/)]);
    expect(computeDtype(c({ activationDtype: 'f16' }))).toBe('torch.float16');
  });

  it('is the table in the trainer README', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../../../packages/trainer/README.md', import.meta.url)), 'utf8');
    expect(readme).toContain(mappingTableMarkdown());
  });
});
