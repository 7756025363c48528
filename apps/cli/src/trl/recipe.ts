// The files of a TRL + accelerate recipe for a fine-tuning config: train.py with every setting
// spelled out, the accelerate and DeepSpeed configs, and a README with the launch commands.
import { ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT } from '@peft-ts/data-alpaca';
import type { FinetuneConfig } from '@peft-ts/trainer';
import { SCHEDULER_NAMES, TRL_TARGET, trlOptimizer, trlSaveSteps } from './mapping.js';

export interface RecipeOptions {
  /** The config file it came from, named in the generated files. */
  configName: string;
  /** A PEFT adapter directory (e.g. a peft-ts checkpoint) to start from instead of a fresh adapter. */
  initAdapter: string | null;
  /** The nearest-equivalent lines for this config, listed in README.md. */
  notes: readonly string[];
}

/** A Python literal for a config value. */
export function py(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`no Python literal for ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(py).join(', ')}]`;
  throw new Error(`no Python literal for ${typeof value}`);
}

/**
 * The dtype the recipe computes in: f32 as peft-ts, fp16 for f16 activations, and bf16 for a
 * packed f32 run (FlashAttention, which keeps attention inside each packed example, has no f32).
 */
export function computeDtype(c: FinetuneConfig): 'torch.float32' | 'torch.float16' | 'torch.bfloat16' {
  if (c.activationDtype === 'f16') return 'torch.float16';
  return c.pack ? 'torch.bfloat16' : 'torch.float32';
}

/** A float literal (1 -> 1.0), so Python sees the type transformers expects. */
function pyFloat(value: number): string {
  const text = py(value);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

function trainPy(c: FinetuneConfig, o: RecipeOptions): string {
  const compute = computeDtype(c);
  const evaluate = c.evalEvery !== null && c.validationSplit > 0;
  const saveSteps = trlSaveSteps(c);
  const early = c.earlyStoppingPatience !== null && evaluate;
  const warmup = c.warmupSteps > 0 ? py(c.warmupSteps) : pyFloat(c.warmupRatio);
  const lines: string[] = [];
  const add = (...l: string[]) => lines.push(...l);

  add(
    '#!/usr/bin/env python3',
    `# The run of ${o.configName} on TRL's SFTTrainer (TRL ${TRL_TARGET.trl}, transformers ${TRL_TARGET.transformers}, PEFT, bitsandbytes),`,
    '# written by `peft-ts export trl`. Launch it with accelerate as README.md shows; README.md also',
    '# lists where a setting could only be approximated.',
    'import json',
    'import os',
    'import re',
    'import sys',
    '',
    'import torch',
    'from accelerate import PartialState',
    'from datasets import Dataset',
    `from peft import LoraConfig${o.initAdapter !== null ? ', PeftModel' : ''}`,
    `from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig${early ? ', EarlyStoppingCallback' : ''}, set_seed`,
    'from trl import SFTConfig, SFTTrainer',
    '',
    '# Paths as written in the config, read from the directory the run is launched in.',
    `MODEL = ${py(c.model)}`,
    `DATA = ${py(c.data)}`,
    `OUTPUT = ${py(c.output)}`,
    `INIT_ADAPTER = ${py(o.initAdapter)}`,
    `OVERWRITE = ${py(c.overwrite)}`,
    '',
    `TEMPLATE = ${py(c.template)}  # auto, alpaca, chat or model`,
    `TRAIN_ON = ${py(c.trainOn)}  # response or all`,
    `ON_INVALID = ${py(c.onInvalid)}  # error or skip`,
    `VALIDATION_SPLIT = ${py(c.validationSplit)}`,
    `SEED = ${py(c.seed)}`,
    '# peft-ts computes in f32 over 16-bit weights; PyTorch computes in the weights\' dtype.',
    `COMPUTE_DTYPE = ${compute}`,
    '',
    'ALPACA_PROMPT_INPUT = (',
    ...splitLiteral(ALPACA_PROMPT_INPUT),
    ')',
    'ALPACA_PROMPT_NO_INPUT = (',
    ...splitLiteral(ALPACA_PROMPT_NO_INPUT),
    ')',
    '# The `chat` template of peft-ts: <|role|> tags, the assistant turn and EOS trained.',
    'TAG_CHAT_TEMPLATE = (',
    '    "{% for message in messages %}"',
    '    "{% if message[\'role\'] == \'assistant\' %}"',
    '    "<|assistant|>\\n{% generation %}{{ message[\'content\'] }}\\n{{ eos_token }}{% endgeneration %}"',
    '    "{% else %}<|{{ message[\'role\'] }}|>\\n{{ message[\'content\'] }}\\n{% endif %}"',
    '    "{% endfor %}"',
    ')',
    'ROLES = {',
    '    "messages": ("role", "content", {"system": "system", "user": "user", "assistant": "assistant"}),',
    '    "conversations": ("from", "value", {"system": "system", "human": "user", "gpt": "assistant"}),',
    '}',
    '',
    '',
    'def read_records(path):',
    '    with open(path, encoding="utf-8-sig") as f:',
    '        text = f.read()',
    '    if text.lstrip().startswith("["):',
    '        return [(f"{path}[{i}]", r) for i, r in enumerate(json.loads(text))]',
    '    return [(f"{path}:{n}", json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]',
    '',
    '',
    'def text_field(record, name, required):',
    '    value = record.get(name, None if required else "")',
    '    if not isinstance(value, str) or (required and not value.strip()):',
    '        raise ValueError(f"{name}: expected a non-empty string, got {value!r}")',
    '    return value',
    '',
    '',
    'def parse(record):',
    '    """A record as ("instruction", instruction, input, output) or ("chat", messages)."""',
    '    if not isinstance(record, dict):',
    '        raise ValueError("expected a JSON object")',
    '    for field, (role_key, text_key, roles) in ROLES.items():',
    '        if field in record:',
    '            turns = record[field]',
    '            if not isinstance(turns, list) or not turns:',
    '                raise ValueError(f"{field}: expected a non-empty array of turns")',
    '            messages = []',
    '            for i, turn in enumerate(turns):',
    '                role = roles.get(turn.get(role_key)) if isinstance(turn, dict) else None',
    '                content = turn.get(text_key) if isinstance(turn, dict) else None',
    '                if role is None or not isinstance(content, str) or (role != "system" and not content.strip()):',
    '                    raise ValueError(f"{field}[{i}]: expected a known {role_key} and a non-empty {text_key}")',
    '                messages.append({"role": role, "content": content})',
    '            if not any(m["role"] == "assistant" for m in messages):',
    '                raise ValueError(f"{field}: expected at least one assistant turn to train on")',
    '            return ("chat", messages)',
    '    if "instruction" in record and ("output" in record or "response" in record):',
    '        dolly = "output" not in record',
    '        return (',
    '            "instruction",',
    '            text_field(record, "instruction", True),',
    '            text_field(record, "context" if dolly else "input", False),',
    '            text_field(record, "response" if dolly else "output", True),',
    '        )',
    '    raise ValueError("expected an Alpaca, Dolly, chat (messages) or ShareGPT (conversations) record")',
    '',
    '',
    'def to_row(example, template):',
    '    """A prompt-completion row (alpaca) or a conversational row (chat, model)."""',
    '    if template == "alpaca":',
    '        if example[0] == "chat":',
    '            roles = [m["role"] for m in example[1]]',
    '            if roles != ["user", "assistant"]:',
    '                raise ValueError(f"a {\',\'.join(roles)} conversation needs a chat template, not alpaca")',
    '            example = ("instruction", example[1][0]["content"], "", example[1][1]["content"])',
    '        _, instruction, context, output = example',
    '        prompt = ALPACA_PROMPT_INPUT if context else ALPACA_PROMPT_NO_INPUT',
    '        # TRL appends the EOS token to the completion, as train appends it to the response.',
    '        # One pass, as train fills the placeholders: text in a field is never expanded again.',
    '        values = {"instruction": instruction, "input": context}',
    '        return {"prompt": re.sub(r"\\{(instruction|input)\\}", lambda m: values[m.group(1)], prompt), "completion": output}',
    '    if example[0] == "chat":',
    '        return {"messages": example[1]}',
    '    _, instruction, context, output = example',
    '    user = f"{instruction}\\n\\n{context}" if context else instruction',
    '    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": output}]}',
    '',
    '',
    'def load_rows(tokenizer):',
    '    rows, invalid = [], []',
    '    for where, record in read_records(DATA):',
    '        try:',
    '            example = parse(record)',
    '            template = TEMPLATE',
    '            if template == "auto":',
    '                template = "alpaca" if example[0] == "instruction" else ("model" if tokenizer.chat_template else "chat")',
    '            rows.append((template, to_row(example, template)))',
    '        except ValueError as error:',
    '            invalid.append(f"{where}: {error}")',
    '    if invalid:',
    '        listed = "\\n".join(f"  {line}" for line in invalid[:10]) + (f"\\n  ... and {len(invalid) - 10} more" if len(invalid) > 10 else "")',
    '        if ON_INVALID == "error":',
    '            sys.exit(f"{DATA}: {len(invalid)} invalid records (fix them, or set ON_INVALID = \\"skip\\"):\\n{listed}")',
    '        print(f"data: skipped {len(invalid)} invalid records:\\n{listed}", file=sys.stderr)',
    '    templates = {t for t, _ in rows}',
    '    if not rows or len(templates) != 1:',
    '        sys.exit(f"{DATA}: expected records of one kind with one template, got {sorted(templates) or \'none\'}")',
    '    return templates.pop(), Dataset.from_list([row for _, row in rows])',
    '',
    '',
    'def main():',
    '    if os.path.isdir(OUTPUT) and os.listdir(OUTPUT) and not OVERWRITE:',
    '        sys.exit(f"{OUTPUT}: expected an empty or new output directory (set OVERWRITE = True to write into it)")',
    '    set_seed(SEED)',
    '    tokenizer = AutoTokenizer.from_pretrained(MODEL)',
    '    template, dataset = load_rows(tokenizer)',
    '    if template == "chat":',
    '        # BOS as the tokenizer adds it to plain text, since a chat template is tokenized without it.',
    '        adds_bos = tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]',
    '        tokenizer.chat_template = ("{{ bos_token }}" if adds_bos else "") + TAG_CHAT_TEMPLATE',
    '    conversational = template != "alpaca"',
    '    split = dataset.train_test_split(test_size=VALIDATION_SPLIT, seed=SEED) if VALIDATION_SPLIT > 0 else None',
    '    zero3 = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3" or "--deepspeed" in sys.argv',
    '',
  );

  add(
    '    # Before the model, so that DeepSpeed ZeRO-3 can shard it while it loads.',
    '    args = SFTConfig(',
    '        output_dir=OUTPUT,',
    '        # data',
    `        max_length=${py(c.maxLength)},`,
    `        packing=${py(c.pack)},`,
  );
  if (c.pack) add('        packing_strategy="bfd",', '        eval_packing=False,');
  add(
    `        completion_only_loss=TRAIN_ON == "response" and not conversational,`,
    `        assistant_only_loss=TRAIN_ON == "response" and conversational,`,
    '        # optimisation',
    `        learning_rate=${py(c.lr)},`,
    `        lr_scheduler_type=${py(SCHEDULER_NAMES[c.schedule])},`,
    `        warmup_steps=${warmup},${c.warmupSteps > 0 ? '' : '  # a fraction of the total steps, rounded up'}`,
    `        num_train_epochs=${pyFloat(c.epochs)},`,
    `        max_steps=${py(c.maxSteps ?? -1)},`,
    `        per_device_train_batch_size=${py(c.batchSize)},`,
    `        per_device_eval_batch_size=${py(c.batchSize)},`,
    `        gradient_accumulation_steps=${py(c.gradientAccumulation)},`,
    '        average_tokens_across_devices=True,',
    `        max_grad_norm=${pyFloat(c.maxGradNorm)},`,
    `        optim=${py(trlOptimizer(c))},`,
    `        weight_decay=${pyFloat(c.weightDecay)},`,
    '        adam_beta1=0.9,',
    '        adam_beta2=0.999,',
    '        adam_epsilon=1e-8,',
    `        gradient_checkpointing=${py(c.gradientCheckpointing)},`,
    '        gradient_checkpointing_kwargs={"use_reentrant": False},',
    `        bf16=${py(compute === 'torch.bfloat16')},`,
    `        fp16=${py(compute === 'torch.float16')},`,
    ...(compute === 'torch.float32' ? ['        tf32=False,  # full f32 matmuls, as peft-ts computes'] : []),
    '        # run',
    '        seed=SEED,',
    '        data_seed=SEED,',
  );
  if (evaluate) {
    add(
      '        eval_strategy="steps" if split else "no",',
      `        eval_steps=${py(c.evalEvery)},`,
      '        eval_on_start=split is not None,',
    );
  } else add('        eval_strategy="no",');
  if (saveSteps !== null) add('        save_strategy="steps",', `        save_steps=${py(saveSteps)},`, '        save_total_limit=2,');
  else add('        save_strategy="no",');
  if (early) add('        load_best_model_at_end=True,', '        metric_for_best_model="eval_loss",', '        greater_is_better=False,');
  add(
    '        logging_steps=1,',
    '        report_to="none",',
    '        deepspeed=sys.argv[sys.argv.index("--deepspeed") + 1] if "--deepspeed" in sys.argv else None,',
    '    )',
    '',
  );
  if (c.method === 'qlora') {
    add(
      '    quantization = BitsAndBytesConfig(',
      '        load_in_4bit=True,',
      `        bnb_4bit_quant_type=${py(c.quantType)},`,
      `        bnb_4bit_use_double_quant=${py(c.doubleQuant)},`,
      '        bnb_4bit_compute_dtype=COMPUTE_DTYPE,',
      '        bnb_4bit_quant_storage=COMPUTE_DTYPE,  # lets DeepSpeed ZeRO-3 shard the 4-bit weights',
      '    )',
    );
  } else {
    add('    quantization = None  # method lora: the base stays unquantized');
  }
  add(
    '    model = AutoModelForCausalLM.from_pretrained(',
    '        MODEL,',
    '        dtype=COMPUTE_DTYPE,',
    '        quantization_config=quantization,',
    '        # One whole copy per process for data parallel; ZeRO-3 places the shards itself.',
    '        device_map=None if zero3 else {"": PartialState().local_process_index},',
  );
  if (c.pack) add('        attn_implementation="flash_attention_2",  # keeps attention inside each packed example');
  add('    )');

  const targets = c.targets === 'all-linear' ? py('all-linear') : py(c.targets);
  add(
    '    peft_config = LoraConfig(',
    `        r=${py(c.r)},`,
    `        lora_alpha=${py(c.alpha)},`,
    `        lora_dropout=${py(c.dropout)},`,
    `        target_modules=${targets},`,
    `        modules_to_save=${py(c.modulesToSave)},`,
    '        use_rslora=False,',
    '        bias="none",',
    '        task_type="CAUSAL_LM",',
    '    )',
  );
  if (o.initAdapter !== null) {
    add(
      '    # Start from the adapter weights of INIT_ADAPTER (its adapter_config.json gives r, alpha and targets).',
      '    model = PeftModel.from_pretrained(model, INIT_ADAPTER, is_trainable=True)',
      '    peft_config = None',
    );
  }
  add(
    '',
    '    trainer = SFTTrainer(',
    '        model=model,',
    '        args=args,',
    '        train_dataset=split["train"] if split else dataset,',
    '        eval_dataset=split["test"] if split else None,',
    '        processing_class=tokenizer,',
    '        peft_config=peft_config,',
  );
  if (early) add(`        callbacks=[EarlyStoppingCallback(early_stopping_patience=${py(c.earlyStoppingPatience)})],`);
  add(
    '    )',
    '    # LoRA weights stay f32, as peft-ts keeps them (TRL casts them to bf16 over a 4-bit base).',
    '    if not zero3:',
    '        for parameter in trainer.model.parameters():',
    '            if parameter.requires_grad:',
    '                parameter.data = parameter.data.float()',
    '    trainer.train()',
  );
  if (evaluate) add('    if split:', '        trainer.evaluate()  # after the last step too, as train does');
  add(
    '    trainer.save_model(os.path.join(OUTPUT, "adapter"))',
    '    if trainer.is_world_process_zero():',
    '        tokenizer.save_pretrained(os.path.join(OUTPUT, "adapter"))',
    '',
    '',
    'if __name__ == "__main__":',
    '    main()',
    '',
  );
  return lines.join('\n');
}

/** A long string as adjacent Python literals, one line of text each. */
function splitLiteral(text: string): string[] {
  const parts = text.split(/(?<=\n)/);
  return parts.map((p) => `    ${JSON.stringify(p)}`);
}

const ACCELERATE_CONFIG = `# accelerate: data parallel over every GPU of this machine (one process per GPU).
# Set num_processes to the number of GPUs; for several machines set num_machines,
# machine_rank and main_process_ip on each.
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
num_machines: 1
num_processes: 8
machine_rank: 0
gpu_ids: all
mixed_precision: "no"
rdzv_backend: static
same_network: true
use_cpu: false
`;

function deepspeedZero3(c: FinetuneConfig): string {
  const config = {
    bf16: { enabled: 'auto' },
    fp16: { enabled: 'auto' },
    zero_optimization: {
      stage: 3,
      overlap_comm: true,
      contiguous_gradients: true,
      reduce_bucket_size: 'auto',
      stage3_prefetch_bucket_size: 'auto',
      stage3_param_persistence_threshold: 'auto',
      stage3_gather_16bit_weights_on_model_save: true,
    },
    gradient_accumulation_steps: 'auto',
    gradient_clipping: c.maxGradNorm > 0 ? 'auto' : 0,
    train_batch_size: 'auto',
    train_micro_batch_size_per_gpu: 'auto',
    wall_clock_breakdown: false,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

function readme(c: FinetuneConfig, o: RecipeOptions): string {
  const notes = o.notes.length > 0 ? o.notes.map((n) => `- ${n}`).join('\n') : '- none: every setting maps one to one.';
  return `# TRL recipe for ${o.configName}

Written by \`peft-ts export trl\`: the same data file, template and hyperparameters on Hugging
Face TRL's \`SFTTrainer\`, launched with accelerate for several GPUs (data parallel, or
DeepSpeed ZeRO-3 to shard a model too big for one GPU). The adapter it writes to
\`${c.output}/adapter\` is a PEFT adapter that \`peft-ts generate\`, \`eval\`, \`merge\` and
\`export gguf\` load as they load one trained by \`peft-ts train\`.

Targets TRL ${TRL_TARGET.trl} with transformers ${TRL_TARGET.transformers}:

\`\`\`sh
pip install "trl>=${TRL_TARGET.trl},<2" "transformers>=${TRL_TARGET.transformers},<6" "peft>=${TRL_TARGET.peft}" "bitsandbytes>=${TRL_TARGET.bitsandbytes}" "accelerate>=${TRL_TARGET.accelerate}" "datasets>=${TRL_TARGET.datasets}" deepspeed${c.pack ? ' flash-attn' : ''}
\`\`\`

## Launch

Run from the directory \`peft-ts train\` would run in (the model, data and output paths are
the config's, as written). Set \`num_processes\` in \`accelerate_config.yaml\` to your GPU count.

\`\`\`sh
# data parallel: a whole copy of the model per GPU
accelerate launch --config_file ${'<recipe>'}/accelerate_config.yaml ${'<recipe>'}/train.py
# DeepSpeed ZeRO-3: parameters, gradients and optimizer state sharded over the GPUs
accelerate launch --config_file ${'<recipe>'}/accelerate_config.yaml ${'<recipe>'}/train.py --deepspeed ${'<recipe>'}/deepspeed_zero3.json
\`\`\`

\`per_device_train_batch_size\` is per GPU: with N GPUs a step sees N times the batch of the
one-GPU run. Divide \`gradient_accumulation_steps\` in \`train.py\` by N to keep it.

## Starting from a peft-ts adapter

\`peft-ts export trl --config ${o.configName} --out <recipe> --init-adapter out/checkpoint-500\`
starts TRL from that checkpoint's adapter weights (its \`adapter_config.json\` gives r, alpha and
the targets). The optimizer state, schedule position and data order of a peft-ts checkpoint
have no TRL form, so training restarts its schedule from step 0.${o.initAdapter !== null ? ` This recipe starts from \`${o.initAdapter}\`.` : ''}
The script writes into a new or empty output directory only (or set \`OVERWRITE = True\`): when
the checkpoint lies in \`${c.output}\`, set \`OUTPUT\` in train.py to another directory.

## Taking the adapter back

\`\`\`sh
peft-ts generate ${c.model} --adapter ${c.output}/adapter --prompt "..."
peft-ts eval --model ${c.model} --data ${c.data} --adapter ${c.output}/adapter
peft-ts merge ${c.model} ${c.output}/adapter merged/
peft-ts export gguf ${c.model} model.gguf --adapter ${c.output}/adapter
\`\`\`

## Settings approximated

${notes}

The full table of how each peft-ts key maps, and how the semantics differ, is in the
\`@peft-ts/trainer\` README.
`;
}

/** The recipe's files, by name. */
export function trlRecipe(c: FinetuneConfig, o: RecipeOptions): Record<string, string> {
  return {
    'train.py': trainPy(c, o),
    'accelerate_config.yaml': ACCELERATE_CONFIG,
    'deepspeed_zero3.json': deepspeedZero3(c),
    'README.md': readme(c, o),
  };
}
