// `peft-ts info`: the GPU adapter peft-ts uses, its features and limits, as text or JSON.
import { formatDeviceInfo, getDevice } from '@peft-ts/tensor';
import { out, parse, UsageError } from '../args.js';

export const INFO_HELP = `Usage: peft-ts info [--json]

Shows the GPU adapter peft-ts uses (Mesa's lavapipe on a machine without a GPU driver), its
features, limits, subgroup sizes and subgroup-matrix configs.

Options:
  --json   machine-readable output (the fields of the adapter description)
`;

export async function info(argv: string[]): Promise<number> {
  const { values, positionals } = parse('info', argv, { json: { type: 'boolean' } });
  if (values.help) {
    out(INFO_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`peft-ts info: unexpected argument ${JSON.stringify(positionals[0])}\n\n${INFO_HELP}`);
  const gpu = await getDevice();
  try {
    out(values.json ? JSON.stringify(gpu.info, null, 2) : formatDeviceInfo(gpu.info));
  } finally {
    gpu.destroy();
  }
  return 0;
}
