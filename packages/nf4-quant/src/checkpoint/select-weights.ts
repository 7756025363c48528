// Which tensors of a Hugging Face checkpoint get quantized: the weights of the linear layers
// inside the decoder blocks, the ones transformers' bitsandbytes integration replaces.
import type { DType } from '@peft-ts/safetensors';

export interface TensorMeta {
  dtype: DType;
  shape: readonly number[];
}

const FLOAT_DTYPES: readonly DType[] = ['F32', 'F16', 'BF16'];
// A numbered block of a decoder stack: `model.layers.3.`, `transformer.h.0.`, `blocks.12.`.
const IN_BLOCK = /(^|\.)(layers|layer|h|blocks|block)\.\d+\./;
// 2-D weights inside blocks that are not linear layers (norm scales, embeddings, position biases).
const NOT_LINEAR = /(norm|^ln|_ln$|embed|^wte$|^wpe$|relative_attention_bias)/i;

/** Model types whose linear layers are `Conv1D` modules, stored as [in, out] and transposed before quantizing. */
export const CONV1D_MODEL_TYPES: readonly string[] = Object.freeze(['gpt2']);

/** The module path of a parameter key (`a.b.q_proj.weight` -> `a.b.q_proj`). */
export function modulePath(key: string): string {
  const dot = key.lastIndexOf('.');
  return dot < 0 ? '' : key.slice(0, dot);
}

/**
 * Whether `skip` names `module`: the whole path, or a run of whole dotted components of it
 * (`lm_head`, `mlp.down_proj`, `model.layers.0`), the way `llm_int8_skip_modules` entries are meant.
 */
export function matchesModule(module: string, skip: string): boolean {
  if (skip === '') return false;
  return module === skip || `.${module}.`.includes(`.${skip}.`);
}

/**
 * The default rule: a float tensor named `*.weight`, 2-D, inside a numbered decoder block, whose
 * module is not a norm or an embedding and is not listed in `skipModules`. lm_head, embeddings
 * and final norms sit outside the blocks and stay in their dtype, as transformers keeps them.
 */
export function isQuantizableWeight(key: string, meta: TensorMeta, skipModules: readonly string[] = []): boolean {
  if (!key.endsWith('.weight') || meta.shape.length !== 2 || !FLOAT_DTYPES.includes(meta.dtype)) return false;
  const module = modulePath(key);
  if (!IN_BLOCK.test(`${module}.`)) return false;
  const last = module.slice(module.lastIndexOf('.') + 1);
  if (NOT_LINEAR.test(last)) return false;
  return !skipModules.some((skip) => matchesModule(module, skip));
}
