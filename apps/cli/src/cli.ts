// The peft-ts command line: parses the command and its flags, runs it, maps errors to exit codes.
import { PeftError } from '@peft-ts/errors';
import { formatDeviceInfo, getDevice } from '@peft-ts/tensor';

const EXIT = { ok: 0, usage: 2, input: 3, device: 4, failure: 1 } as const;

const HELP = `peft-ts: LoRA and QLoRA fine-tuning of language models on WebGPU

Usage: peft-ts <command> [options]

Commands:
  info     show the GPU adapter, its features, limits and subgroup-matrix configs
  demo     the end-to-end demo (device check until the trainer package lands)

Options:
  -h, --help     show help for a command
  -v, --version  print the version
`;

async function info(): Promise<number> {
  const gpu = await getDevice();
  try {
    process.stdout.write(`${formatDeviceInfo(gpu.info)}\n`);
  } finally {
    gpu.destroy();
  }
  return EXIT.ok;
}

async function demo(): Promise<number> {
  process.stdout.write('peft-ts demo\n\n');
  const gpu = await getDevice();
  try {
    process.stdout.write(`${formatDeviceInfo(gpu.info)}\n\n`);
  } finally {
    gpu.destroy();
  }
  process.stdout.write(
    'The GPU device works. The QLoRA training demo (tiny model, example dataset, evaluation, merge,\n' +
      'generation) is part of the trainer and CLI release and is not in this version yet.\n',
  );
  return EXIT.ok;
}

const commands: Record<string, { run: () => Promise<number>; help: string }> = {
  info: { run: info, help: 'Usage: peft-ts info\n\nShows the GPU adapter peft-ts would use.\n' },
  demo: { run: demo, help: 'Usage: peft-ts demo\n\nRuns the embedded end-to-end demo.\n' },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(HELP);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '-v' || name === '--version') {
    process.stdout.write('0.0.0\n');
    return EXIT.ok;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`peft-ts: unknown command "${name}"\n\n${HELP}`);
    return EXIT.usage;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(command.help);
    return EXIT.ok;
  }
  if (rest.length > 0) {
    process.stderr.write(`peft-ts ${name}: unexpected argument "${rest[0]}"\n\n${command.help}`);
    return EXIT.usage;
  }
  return command.run();
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (PeftError.isInstance(error)) {
      process.stderr.write(`peft-ts: ${error.message}\n`);
      process.exitCode = error.code === 'DEVICE' ? EXIT.device : EXIT.input;
    } else {
      process.stderr.write(`peft-ts: unexpected failure\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = EXIT.failure;
    }
  },
);
