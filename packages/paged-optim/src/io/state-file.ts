// Optimizer state as files: `optimizer.safetensors` (the state tensors, PyTorch/bitsandbytes
// names) and `optimizer.json` (hyperparameters, groups, steps), written to any WritableTree (a
// directory, OPFS, memory) and read from any FileTree.
import { FormatError } from '@peft-ts/errors';
import { SafetensorsFile, writeSafetensorsTo, type FileTree, type TensorSource, type WritableTree } from '@peft-ts/safetensors';

export const STATE_FORMAT = 'peft-ts-optimizer-state';
export const STATE_VERSION = 1;
export const TENSORS_FILE = 'optimizer.safetensors';
export const JSON_FILE = 'optimizer.json';

export type JsonValue = number | string | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface StateJson {
  format: string;
  version: number;
  /** Ties the JSON to the tensors file written with it (also in the tensors file's metadata). */
  stateId: string;
  optimizer: string;
  settings: Record<string, JsonValue>;
  paramGroups: { params: number[]; [key: string]: JsonValue }[];
  /** Per parameter index: its step count. */
  state: Record<string, { step: number }>;
}

/** A fresh id tying the JSON to the tensors file written with it. */
function newStateId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Writes the tensors file, then the JSON, each as one write of `out` (atomic per file where the
 * medium allows: a directory writer renames a temporary file). A reader that finds the two from
 * different saves notices it from the stateId.
 */
export async function writeStateFiles(out: WritableTree, tensors: readonly TensorSource[], json: Omit<StateJson, 'format' | 'version' | 'stateId'>): Promise<void> {
  const stateId = newStateId();
  await writeSafetensorsTo(out, TENSORS_FILE, tensors, { metadata: { format: STATE_FORMAT, stateId } });
  const full: StateJson = { format: STATE_FORMAT, version: STATE_VERSION, stateId, ...json };
  await out.write(JSON_FILE, `${JSON.stringify(full, null, 2)}\n`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads and checks the JSON and opens the tensors file; the caller closes the file. */
export async function readStateFiles(tree: FileTree): Promise<{ json: StateJson; tensors: SafetensorsFile; jsonPath: string }> {
  const jsonSource = await tree.open(JSON_FILE);
  if (jsonSource === null) {
    throw new FormatError({ file: `${tree.name.replace(/\/+$/, '')}/${JSON_FILE}`, field: '(file)', expected: 'an optimizer state JSON', got: 'no such file' });
  }
  const jsonPath = jsonSource.name;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(await jsonSource.read(0, jsonSource.size)));
  } catch (cause) {
    throw new FormatError({ file: jsonPath, field: '(file)', expected: 'valid JSON', got: String(cause), cause });
  } finally {
    await jsonSource.close?.();
  }
  if (!isObject(parsed)) throw new FormatError({ file: jsonPath, field: '(root)', expected: 'an object', got: parsed });
  if (parsed.format !== STATE_FORMAT) throw new FormatError({ file: jsonPath, field: 'format', expected: JSON.stringify(STATE_FORMAT), got: parsed.format });
  if (parsed.version !== STATE_VERSION) throw new FormatError({ file: jsonPath, field: 'version', expected: String(STATE_VERSION), got: parsed.version });
  if (typeof parsed.stateId !== 'string') throw new FormatError({ file: jsonPath, field: 'stateId', expected: 'a string', got: parsed.stateId });
  if (typeof parsed.optimizer !== 'string') throw new FormatError({ file: jsonPath, field: 'optimizer', expected: 'a string', got: parsed.optimizer });
  if (!isObject(parsed.settings)) throw new FormatError({ file: jsonPath, field: 'settings', expected: 'an object', got: parsed.settings });
  if (!Array.isArray(parsed.paramGroups) || !parsed.paramGroups.every((g) => isObject(g) && Array.isArray(g.params) && g.params.every((i) => Number.isInteger(i)))) {
    throw new FormatError({ file: jsonPath, field: 'paramGroups', expected: 'an array of groups with integer `params` lists', got: parsed.paramGroups });
  }
  if (!isObject(parsed.state)) throw new FormatError({ file: jsonPath, field: 'state', expected: 'an object', got: parsed.state });
  for (const [k, v] of Object.entries(parsed.state)) {
    if (!isObject(v) || !Number.isInteger(v.step) || (v.step as number) < 0) {
      throw new FormatError({ file: jsonPath, field: `state.${k}.step`, expected: 'a non-negative integer', got: isObject(v) ? v.step : v });
    }
  }
  const json = parsed as unknown as StateJson;
  const tensorsSource = await tree.open(TENSORS_FILE);
  if (tensorsSource === null) {
    throw new FormatError({ file: `${tree.name.replace(/\/+$/, '')}/${TENSORS_FILE}`, field: '(file)', expected: `the optimizer state tensors saved with ${jsonPath}`, got: 'no such file' });
  }
  const tensors = await SafetensorsFile.open(tensorsSource);
  const id = tensors.metadata?.stateId;
  if (id !== json.stateId) {
    await tensors.close();
    throw new FormatError({
      file: tensors.path,
      field: '__metadata__.stateId',
      expected: `${json.stateId} (the stateId of ${jsonPath}; both files must come from one save)`,
      got: id ?? 'none',
    });
  }
  return { json, tensors, jsonPath };
}
