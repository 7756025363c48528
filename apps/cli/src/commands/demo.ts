// `peft-ts demo`: the whole job on the embedded default. A tiny model and tokenizer generated
// deterministically, QLoRA training on the shipped example dataset, evaluation before and after
// on held-out examples, merging, and generation from the merged model.
import { copyFile, readdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatBytes, PeftError } from '@peft-ts/errors';
import { exampleDatasetPath, type Example, type Tokenizer } from '@peft-ts/data-alpaca/node';
import { createRuntime, type Runtime } from '@peft-ts/tensor';
import { loadModel, type CausalLM } from '@peft-ts/models/node';
import { mergeIntoCheckpoint } from '@peft-ts/merge/node';
import { generateText, promptIds, resolveFinetuneConfig, runFinetune } from '@peft-ts/trainer/node';
import { numberFlag, out, parse, UsageError } from '../args.js';
import { createDemoAssets } from '../demo/assets.js';
import { accuracy, confusion, confusionTable, correct, majorityRate, percent, total, verdict, verdictLine, type Confusion } from '../demo/verdict.js';

export const DEMO_HELP = `Usage: peft-ts demo [--dir <dir>] [--steps <n>] [--fresh]

Runs the whole job on a built-in default, in about 2 minutes on 2 CPU cores without a GPU:
  1. builds a tiny Llama-architecture model and a byte-level BPE tokenizer (deterministic),
  2. scores it on held-out examples of the shipped instruction dataset,
  3. fine-tunes it with QLoRA (NF4 base with double quantization, LoRA on every linear layer),
  4. scores it again, merges the adapter into the base weights, and generates from the merged
     model.

Options:
  --dir <dir>    where the model, run and merged model go (default ./peft-ts-demo)
  --steps <n>    optimizer steps (default 300)
  --fresh        delete the run and merged model from a previous demo first (without it, a
                 directory that holds them is refused)
`;

interface Score {
  /** Held-out review-sentiment examples: expected label against the answer's label. */
  sentiment: Confusion;
  /** All held-out examples answered exactly. */
  exact: number;
  total: number;
  samples: { prompt: string; expected: string; got: string }[];
}

const LABELS = ['positive', 'negative', 'neutral'];

/** Greedy answers to held-out instructions: label confusion on the sentiment task, exact match on all. */
async function score(model: CausalLM, tokenizer: Tokenizer, examples: readonly Example[]): Promise<Score> {
  const pairs: { expected: string; got: string }[] = [];
  const s = { exact: 0, total: 0, samples: [] as Score['samples'] };
  for (const e of examples) {
    if (e.kind !== 'instruction') continue;
    const r = await generateText(model, tokenizer, promptIds(tokenizer, 'alpaca', e.instruction, e.input), { maxNewTokens: 16 });
    const got = r.text.trim();
    const expected = e.output.trim();
    s.total += 1;
    if (got === expected) s.exact += 1;
    if (LABELS.includes(expected)) {
      pairs.push({ expected, got });
      if (s.samples.length < 3) s.samples.push({ prompt: e.input, expected, got });
    }
  }
  return { ...s, sentiment: confusion(LABELS, pairs) };
}

function showScore(title: string, s: Score, table: boolean): void {
  const c = s.sentiment;
  out(`${title}: sentiment labels right on ${correct(c)}/${total(c)} held-out reviews (${percent(accuracy(c))}; chance ${percent(1 / LABELS.length)}, most common label ${percent(majorityRate(c))}), ${s.exact}/${s.total} held-out answers exact overall`);
  for (const x of s.samples) {
    out(`     review:   ${x.prompt.length > 80 ? `${x.prompt.slice(0, 77)}...` : x.prompt}`);
    out(`     expected: ${x.expected}   got: ${x.got === '' ? '(nothing)' : x.got.replace(/\n/g, ' ').slice(0, 60)}`);
  }
  if (table) for (const line of confusionTable(c)) out(`     ${line}`);
}

/** The demo's model (`<dir>/model`) and the example dataset it trains on (`<dir>/example-alpaca.json`), nothing else. */
async function writeAssets(dir: string): Promise<number> {
  const assets = await createDemoAssets(join(dir, 'model'), { seed: 0, datasetPath: exampleDatasetPath() });
  const dataset = join(dir, 'example-alpaca.json');
  await copyFile(exampleDatasetPath(), `${dataset}.tmp`);
  await rename(`${dataset}.tmp`, dataset);
  out(`demo assets: ${assets.dir} (${assets.reused ? 'reused' : 'generated'}), ${dataset}`);
  return 0;
}

export async function demo(argv: string[]): Promise<number> {
  const { values, positionals } = parse('demo', argv, { dir: { type: 'string' }, steps: { type: 'string' }, fresh: { type: 'boolean' }, 'write-assets': { type: 'string' } });
  if (values.help) {
    out(DEMO_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`peft-ts demo: unexpected argument ${JSON.stringify(positionals[0])}\n\n${DEMO_HELP}`);
  // Not in the help: the web page's build puts the very same model and dataset in its static site.
  if (typeof values['write-assets'] === 'string') return writeAssets(resolve(values['write-assets']));
  const steps = numberFlag('demo', 'steps', values.steps, { integer: true, min: 1 }) ?? 300;
  const root = resolve(typeof values.dir === 'string' ? values.dir : 'peft-ts-demo');
  const started = performance.now();
  const modelDir = join(root, 'model');
  const runDir = join(root, 'run');
  const mergedDir = join(root, 'merged');
  if (values.fresh) {
    await rm(runDir, { recursive: true, force: true });
    await rm(mergedDir, { recursive: true, force: true });
  } else {
    // A second demo in the same place would replace the first one's run: say so instead.
    for (const dir of [runDir, mergedDir]) {
      const entries = await readdir(dir).catch(() => [] as string[]);
      if (entries.length > 0) throw new PeftError('OUTPUT_EXISTS', `peft-ts demo: ${dir}: expected no earlier demo run, got one; pass --fresh to replace it (or --dir for another place)`);
    }
  }
  out('peft-ts demo\n');
  const assets = await createDemoAssets(modelDir, { seed: 0, datasetPath: exampleDatasetPath() });
  out(`1. tiny model: ${modelDir} (${assets.reused ? 'reused' : 'generated'}; Llama architecture, vocab ${assets.vocabSize})`);
  const rt: Runtime = await createRuntime({ seed: 0 });
  try {
    out(`   GPU: ${rt.gpu.info.description}${rt.gpu.info.isSoftware ? ' (software rendering: about 2 minutes on 2 CPU cores)' : ''}`);
    const config = resolveFinetuneConfig(
      {
        model: modelDir,
        data: exampleDatasetPath(),
        output: runDir,
        method: 'qlora',
        template: 'alpaca',
        r: 16,
        alpha: 32,
        dropout: 0,
        // Every linear layer including the output head, and the embedding trained in full
        // (PEFT's modules_to_save): a randomly initialised base has no useful features to adapt.
        targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'],
        modulesToSave: ['embed_tokens'],
        lr: 6e-3,
        schedule: 'cosine',
        warmupRatio: 0.05,
        maxSteps: steps,
        batchSize: 8,
        gradientAccumulation: 1,
        maxLength: 128,
        validationSplit: 0.15,
        evalEvery: Math.max(10, Math.round(steps / 5)),
        saveEvery: Math.max(10, Math.round(steps / 3)),
        optimizer: 'paged_adamw',
        optimizerBudgetMb: 4,
        seed: 0,
        gradientCheckpointing: false,
      },
      'demo',
    );
    let before: Score | null = null;
    out(`2. QLoRA: NF4 base with double quantization, LoRA r=${config.r} on every linear layer and the output head, embeddings trained in full, ${steps} steps`);
    const run = await runFinetune(rt, config, {
      log: (line) => out(`   ${line}`),
      beforeTrain: async ({ model, tokenizer, validationExamples }) => {
        before = await score(model, tokenizer, validationExamples);
        showScore('   before training', before, false);
      },
    });
    const s = run.summary;
    run.lora.train(false);
    const after = await score(run.model, run.tokenizer, run.validationExamples);
    showScore('3. after training', after, true);
    out(`   ${s.steps} steps in ${s.seconds.toFixed(1)} s, ${(s.tokens / Math.max(1e-9, s.seconds)).toFixed(0)} tok/s; loss ${s.finalLoss?.toFixed(3) ?? 'n/a'}, best validation loss ${s.bestValLoss?.toFixed(3) ?? 'n/a'}; peak GPU memory ${formatBytes(s.peakGpuBytes)}`);
    run.model.dispose();

    out(`\n4. merge: adapter ${s.adapterDir} into the base -> ${mergedDir}`);
    await mergeIntoCheckpoint(rt, modelDir, s.adapterDir, mergedDir, { overwrite: true });
    const merged = await loadModel(rt, mergedDir);
    out('   generation from the merged model (a plain checkpoint; no adapter needed):');
    const reviews = run.validationExamples.filter((e) => e.kind === 'instruction' && LABELS.includes(e.output.trim()));
    for (const e of reviews.slice(0, 3)) {
      if (e.kind !== 'instruction') continue;
      process.stdout.write(`   > ${e.instruction}${e.input ? ` | ${e.input}` : ''}\n     `);
      await generateText(merged, run.tokenizer, promptIds(run.tokenizer, 'alpaca', e.instruction, e.input), { maxNewTokens: 24, onText: (t) => process.stdout.write(t.replace(/\n/g, ' ')) });
      process.stdout.write('\n');
    }
    merged.dispose();
    const b = before as Score | null;
    const v = verdict(after.sentiment);
    out(`\ndone in ${((performance.now() - started) / 1000).toFixed(0)} s: ${verdictLine(v, b ? accuracy(b.sentiment) : null)}.`);
    out(`files: ${runDir} (adapter/, checkpoints, metrics.jsonl, loss.svg), ${mergedDir}`);
  } finally {
    rt.destroy();
  }
  return 0;
}
