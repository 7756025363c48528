// The peft-ts command line: parses the command and its flags, runs it, maps errors to exit codes.
import { out, UsageError } from './args.js';
import { errorLine, EXIT, EXIT_CODES_HELP, exitCodeFor, withExitCodes } from './errors.js';
import { estimate, ESTIMATE_HELP } from './commands/estimate.js';
import { generateCommand, GENERATE_HELP } from './commands/generate.js';
import { inspect, INSPECT_HELP } from './commands/inspect.js';
import { merge, MERGE_HELP } from './commands/merge.js';
import { quantize, QUANTIZE_HELP } from './commands/quantize.js';
import { train, TRAIN_HELP } from './commands/train.js';
import { demo, DEMO_HELP } from './commands/demo.js';
import { info, INFO_HELP } from './commands/info.js';
import { exportTrl, EXPORT_TRL_HELP } from './commands/export-trl.js';
import { exportGguf, EXPORT_GGUF_HELP } from './commands/export-gguf.js';
import { exportGgufLora, EXPORT_GGUF_LORA_HELP } from './commands/export-gguf-lora.js';
import { evalCommand, EVAL_HELP } from './commands/eval.js';
import { dataCommand, DATA_HELP } from './commands/data-preview.js';
import { sweep, SWEEP_HELP } from './commands/sweep.js';
import { adoptParentTerminal, runFiltered, shouldFilter } from './dawn-notices.js';

export const VERSION = '0.0.0';

export { EXIT, exitCodeFor } from './errors.js';

const HELP = `peft-ts ${VERSION}: LoRA and QLoRA fine-tuning of language models on WebGPU

Usage: peft-ts <command> [options]        (peft-ts <command> --help for its options)

Commands:
  demo       the end-to-end demo: a tiny model, QLoRA training, evaluation, merge, generation
  train      fine-tune a Hugging Face model on instruction data with LoRA or QLoRA
  generate   generate text from a base model, base + adapter, or a merged model
  eval       loss and perplexity on held-out data, base and adapter side by side
  data       data preview: examples as training sees them, trained span highlighted
  sweep      one training per grid point (r, targets, ...) on one loaded base, with a report
  merge      merge an adapter into its base checkpoint (plain HF checkpoint out)
  quantize   quantize a checkpoint to bitsandbytes-layout NF4/FP4
  estimate   GPU memory for full fine-tuning vs LoRA vs QLoRA
  inspect    summarise a model or adapter directory
  info       the GPU adapter peft-ts uses
  export     export trl: a TRL + accelerate recipe for a train config, for more than one GPU;
             export gguf: a GGUF file for llama.cpp / Ollama

${EXIT_CODES_HELP}`;

type Command = { run: (argv: string[]) => Promise<number>; help: string };

/** `peft-ts export <format>`: one subcommand per format, each with its own flags and --help. */
const exportFormats: Record<string, Command> = {
  trl: { run: exportTrl, help: EXPORT_TRL_HELP },
  gguf: { run: exportGguf, help: EXPORT_GGUF_HELP },
  'gguf-lora': { run: exportGgufLora, help: EXPORT_GGUF_LORA_HELP },
};

const EXPORT_HELP = `Usage: peft-ts export <format> [options]      (peft-ts export <format> --help for its options)

Formats:
  trl        a TRL + accelerate recipe (train.py, accelerate and DeepSpeed configs) for a train config
  gguf       one GGUF file (model, tokenizer, chat template) for llama.cpp, Ollama and LM Studio
  gguf-lora  a LoRA adapter as an adapter GGUF (llama.cpp --lora, Ollama ADAPTER)
`;

async function exportCommand(argv: string[]): Promise<number> {
  const [format, ...rest] = argv;
  if (format === undefined || format === '-h' || format === '--help') {
    out(withExitCodes(EXPORT_HELP));
    return format === undefined ? EXIT.usage : EXIT.ok;
  }
  const sub = Object.hasOwn(exportFormats, format) ? exportFormats[format] : undefined;
  if (!sub) throw new UsageError(`peft-ts export: unknown format ${JSON.stringify(format)}\n\n${EXPORT_HELP}`);
  const beforeDashes = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (beforeDashes.includes('--help') || beforeDashes.includes('-h')) {
    out(withExitCodes(sub.help));
    return EXIT.ok;
  }
  return sub.run(rest);
}

const commands: Record<string, Command> = {
  demo: { run: demo, help: DEMO_HELP },
  train: { run: train, help: TRAIN_HELP },
  generate: { run: generateCommand, help: GENERATE_HELP },
  eval: { run: evalCommand, help: EVAL_HELP },
  data: { run: dataCommand, help: DATA_HELP },
  sweep: { run: sweep, help: SWEEP_HELP },
  merge: { run: merge, help: MERGE_HELP },
  quantize: { run: quantize, help: QUANTIZE_HELP },
  estimate: { run: estimate, help: ESTIMATE_HELP },
  inspect: { run: inspect, help: INSPECT_HELP },
  info: { run: info, help: INFO_HELP },
  export: { run: exportCommand, help: EXPORT_HELP },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const named = rest[0] !== undefined && Object.hasOwn(commands, rest[0]) ? commands[rest[0]] : undefined;
    if (name === 'help' && named) {
      out(withExitCodes(named.help));
      return EXIT.ok;
    }
    out(HELP);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '-v' || name === '--version') {
    out(VERSION);
    return EXIT.ok;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) throw new UsageError(`peft-ts: unknown command ${JSON.stringify(name)}\n\n${HELP}`);
  // Every command's help ends with the exit codes, whether or not its own text lists them.
  const beforeDashes = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  // export answers --help itself, for the format named after it.
  if (name !== 'export' && (beforeDashes.includes('--help') || beforeDashes.includes('-h'))) {
    out(withExitCodes(command.help));
    return EXIT.ok;
  }
  return command.run(rest);
}

// Commands that use the GPU run in a child whose stderr loses Dawn's adapter notices (dawn-notices.ts).
adoptParentTerminal();
const argv = process.argv.slice(2);
(shouldFilter(argv) ? runFiltered(argv) : main(argv)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const code = exitCodeFor(error);
    if (code === EXIT.failure) process.stderr.write(`peft-ts: unexpected failure\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    else process.stderr.write(`${errorLine(error)}\n`);
    process.exitCode = code;
  },
);
