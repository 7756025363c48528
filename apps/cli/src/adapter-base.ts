// Does an adapter belong to this base? PEFT files record the base the adapter was trained on
// (`base_model_name_or_path`); an adapter whose shapes happen to fit another model family merges
// and loads without an error, so merge and generate say so in one line.
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';

interface ModelIdentity {
  architecture: string | null;
  modelType: string | null;
  name: string | null;
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

async function identityOf(modelDir: string): Promise<ModelIdentity | null> {
  const config = await readJson(join(modelDir, 'config.json'));
  if (!config) return null;
  const architectures = config.architectures;
  return {
    architecture: Array.isArray(architectures) && typeof architectures[0] === 'string' ? architectures[0] : null,
    modelType: typeof config.model_type === 'string' ? config.model_type : null,
    name: typeof config._name_or_path === 'string' && config._name_or_path !== '' ? config._name_or_path : null,
  };
}

async function isModelDir(path: string): Promise<boolean> {
  return stat(join(path, 'config.json')).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** A Hub id rather than a path: `owner/name`, nothing that reads as a directory. */
const isHubId = (name: string): boolean => /^[\w.-]+\/[\w.-]+$/.test(name) && !name.startsWith('.');

const describe = (m: ModelIdentity): string => m.architecture ?? m.modelType ?? 'an unknown architecture';

/**
 * One line when the adapter in `adapterDir` was trained on another kind of model than
 * `baseDir`, else null. The adapter's recorded base is compared by architecture when it is a
 * directory here (relative to the adapter directory or the working directory), and by name
 * against the base's `_name_or_path` when both are Hub ids.
 */
export async function adapterBaseMismatch(baseDir: string, adapterDir: string): Promise<string | null> {
  const adapterConfig = await readJson(join(adapterDir, 'adapter_config.json'));
  const recorded = adapterConfig?.base_model_name_or_path;
  const base = await identityOf(baseDir);
  if (typeof recorded !== 'string' || recorded === '' || !base) return null;
  const candidates = isAbsolute(recorded) ? [recorded] : [resolve(adapterDir, recorded), resolve(recorded)];
  for (const dir of candidates) {
    if (!(await isModelDir(dir))) continue;
    const trainedOn = await identityOf(dir);
    if (!trainedOn) return null;
    const same = (trainedOn.architecture === null || base.architecture === null || trainedOn.architecture === base.architecture) && (trainedOn.modelType === null || base.modelType === null || trainedOn.modelType === base.modelType);
    return same ? null : `the adapter ${adapterDir} was trained on ${describe(trainedOn)} (${recorded}), but the base ${baseDir} is ${describe(base)}; its shapes fit, the result is unlikely to be useful`;
  }
  if (base.name !== null && isHubId(recorded) && isHubId(base.name) && recorded.toLowerCase() !== base.name.toLowerCase()) {
    return `the adapter ${adapterDir} was trained on ${recorded}, but the base ${baseDir} is ${base.name} (${describe(base)}); its shapes fit, the result is unlikely to be useful`;
  }
  return null;
}
