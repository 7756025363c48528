// `peft-ts inspect <file.gguf>`: what llama.cpp will see in a GGUF file (architecture, tensor
// types, tokenizer, special tokens, chat template) and the pitfalls that make an exported model
// behave differently from the trained one.
import { readGgufInfo } from '@peft-ts/gguf/node';
import { out } from '../args.js';

export interface GgufSummary {
  kind: 'gguf';
  version: number;
  type: string;
  architecture: string | null;
  name: string | null;
  tensors: number;
  tensorTypes: Record<string, number>;
  hyperparameters: Record<string, unknown>;
  tokenizer: { model: string | null; pre: string | null; tokens: number; merges: number; addBos: boolean | null; addEos: boolean | null } | null;
  specialTokens: Record<string, { id: number; text: string | null }>;
  chatTemplate: string | null;
  adapter: { type: string | null; alpha: number | null } | null;
  warnings: string[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null);
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);

export async function ggufSummary(file: string): Promise<GgufSummary> {
  const info = await readGgufInfo(file);
  const md = info.metadata;
  const arch = str(md.get('general.architecture'));
  const tensorTypes: Record<string, number> = {};
  for (const t of info.tensors) {
    const name = t.type ?? `type ${t.typeId}`;
    tensorTypes[name] = (tensorTypes[name] ?? 0) + 1;
  }
  const hyperparameters: Record<string, unknown> = {};
  if (arch) for (const [k, v] of md) if (k.startsWith(`${arch}.`)) hyperparameters[k.slice(arch.length + 1)] = typeof v === 'bigint' ? Number(v) : v;
  const tokens = Array.isArray(md.get('tokenizer.ggml.tokens')) ? (md.get('tokenizer.ggml.tokens') as unknown[]) : null;
  const merges = Array.isArray(md.get('tokenizer.ggml.merges')) ? (md.get('tokenizer.ggml.merges') as unknown[]).length : 0;
  const specialTokens: Record<string, { id: number; text: string | null }> = {};
  for (const role of ['bos', 'eos', 'eot', 'padding', 'unknown']) {
    const id = num(md.get(`tokenizer.ggml.${role}_token_id`));
    if (id !== null) specialTokens[role] = { id, text: str(tokens?.[id]) };
  }
  const addBos = bool(md.get('tokenizer.ggml.add_bos_token'));
  const addEos = bool(md.get('tokenizer.ggml.add_eos_token'));
  const chatTemplate = str(md.get('tokenizer.chat_template'));
  const type = str(md.get('general.type')) ?? 'model';
  const warnings: string[] = [];
  const eos = specialTokens.eos;
  const bos = specialTokens.bos;
  const pad = specialTokens.padding;
  if (type !== 'adapter') {
    if (!tokens) warnings.push('no tokenizer (tokenizer.ggml.tokens): llama.cpp cannot tokenize text for this model');
    if (!eos) warnings.push('no EOS token (tokenizer.ggml.eos_token_id): generation will not stop at the end of a reply');
    if (pad && pad.id === eos?.id) warnings.push(`the padding token is the EOS token (id ${pad.id}): a model fine-tuned with EOS masked as padding may never learn to stop`);
    if (!chatTemplate) warnings.push('no chat template (tokenizer.chat_template): chat front ends will fall back to a generic format the model was not trained on');
    if (chatTemplate && eos?.text && !chatTemplate.includes(eos.text) && !chatTemplate.includes('eos_token')) {
      warnings.push(`the chat template never emits the EOS token ${JSON.stringify(eos.text)}: replies in the trained format may not stop`);
    }
    if (chatTemplate && addBos === true && bos?.text && (chatTemplate.includes('bos_token') || chatTemplate.includes(bos.text))) {
      warnings.push(`add_bos_token is true and the chat template also writes the BOS token ${JSON.stringify(bos.text)}: prompts rendered with the template get it twice`);
    }
  }
  return {
    kind: 'gguf',
    version: info.version,
    type,
    architecture: arch,
    name: str(md.get('general.name')),
    tensors: info.tensors.length,
    tensorTypes,
    hyperparameters,
    tokenizer: tokens ? { model: str(md.get('tokenizer.ggml.model')), pre: str(md.get('tokenizer.ggml.pre')), tokens: tokens.length, merges, addBos, addEos } : null,
    specialTokens,
    chatTemplate,
    adapter: type === 'adapter' ? { type: str(md.get('adapter.type')), alpha: num(md.get('adapter.lora.alpha')) } : null,
    warnings,
  };
}

export async function inspectGguf(file: string, json: boolean): Promise<number> {
  const s = await ggufSummary(file);
  if (json) {
    out(JSON.stringify(s, null, 2));
    return 0;
  }
  out(`GGUF v${s.version} ${s.type} in ${file}`);
  out(`  architecture:    ${s.architecture ?? 'not set'}${s.name ? ` (${s.name})` : ''}`);
  out(`  tensors:         ${s.tensors} (${Object.entries(s.tensorTypes).map(([t, n]) => `${n} ${t}`).join(', ')})`);
  if (s.adapter) out(`  adapter:         ${s.adapter.type ?? '?'}, alpha ${s.adapter.alpha ?? '?'}`);
  const hp = s.hyperparameters;
  if (Object.keys(hp).length) out(`  hyperparameters: ${Object.entries(hp).map(([k, v]) => `${k}=${String(v)}`).join(', ')}`);
  if (s.tokenizer) {
    const t = s.tokenizer;
    out(`  tokenizer:       ${t.model ?? '?'}${t.pre ? ` (pre-tokenizer ${t.pre})` : ''}, ${t.tokens} tokens${t.merges ? `, ${t.merges} merges` : ''}, add_bos ${String(t.addBos)}, add_eos ${String(t.addEos)}`);
  }
  for (const [role, { id, text }] of Object.entries(s.specialTokens)) out(`  ${`${role} token:`.padEnd(17)}${id} ${text === null ? '' : JSON.stringify(text)}`);
  if (s.chatTemplate) {
    out(`  chat template:   ${s.chatTemplate.length} characters`);
    for (const line of s.chatTemplate.split('\n')) out(`    ${line}`);
  } else if (s.type !== 'adapter') out('  chat template:   none');
  for (const w of s.warnings) out(`warning: ${w}`);
  return 0;
}
