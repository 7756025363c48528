// Public API of @peft-ts/data-alpaca: instruction and chat data to token batches. Runs in a
// browser: data comes in as bytes, text or a ByteSource/FileTree; `@peft-ts/data-alpaca/node`
// adds reading from paths.

export type { DataWarning, WarningHandler } from './warnings.js';

export { DATASET_FORMATS, detectFormat, parseRecord } from './io/formats.js';
export type { ChatExample, ChatMessage, ChatRole, DatasetFormat, Example, InstructionExample, RecordSource } from './io/formats.js';
export type { ByteSource, FileTree } from './io/byte-source.js';
export { detectLayoutFrom, readJsonArrayFrom, readJsonlFrom } from './io/read-json.js';
export type { FileLayout, JsonRecord } from './io/read-json.js';
export { Dataset, datasetFromRecords, loadDatasetFrom, parseDataset, readExamplesFrom } from './io/load-dataset.js';
export type { LoadOptions, LoadSummary } from './io/load-dataset.js';

export { Tokenizer } from './tokenizer/tokenizer.js';
export type { EncodedText, TemplateMessage, TokenizerOptions } from './tokenizer/tokenizer.js';

export {
  ALPACA_PROMPT_INPUT,
  ALPACA_PROMPT_NO_INPUT,
  ALPACA_TEMPLATE,
  CHAT_TEMPLATE,
  MODEL_CHAT_TEMPLATE,
  instructionTemplate,
  resolveTemplate,
} from './template/templates.js';
export type { InstructionTemplate, ModelChatTemplate, TagChatTemplate, Template, TemplateName } from './template/templates.js';
export { renderExample } from './template/render.js';
export type { RenderedExample, RenderOptions, Segment } from './template/render.js';

export { IGNORE_INDEX, tokenizeExample, tokenizeExamples, tokenizeRendered } from './tokenize/tokenize-example.js';
export type { TokenizedDataset, TokenizedExample, TokenizeOptions } from './tokenize/tokenize-example.js';
export { previewMasks } from './tokenize/preview.js';
export type { PreviewOptions } from './tokenize/preview.js';

export { mulberry32, permutation, seededRandom, shuffleInPlace } from './batch/prng.js';
export { packExamples } from './batch/pack.js';
export type { PackedRow, PackOptions } from './batch/pack.js';
export { BatchIterator, attentionAllowed, attentionMatrix, batches, collate, makeBatches } from './batch/batches.js';
export type { Batch, BatchableExample, BatchOptions, CollateOptions, DataPosition, EpochStats } from './batch/batches.js';
export { splitDataset } from './batch/split.js';
export type { Split, SplitOptions } from './batch/split.js';
export { datasetStats, formatStats } from './batch/stats.js';
export type { DatasetStats, LengthHistogram } from './batch/stats.js';
