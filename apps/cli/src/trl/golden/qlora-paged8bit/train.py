#!/usr/bin/env python3
# The run of run.yaml on TRL's SFTTrainer (TRL 1.9, transformers 5, PEFT, bitsandbytes),
# written by `peft-ts export trl`. Launch it with accelerate as README.md shows; README.md also
# lists where a setting could only be approximated.
import json
import os
import re
import sys

import torch
from accelerate import PartialState
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, EarlyStoppingCallback, set_seed
from trl import SFTConfig, SFTTrainer

# Paths as written in the config, read from the directory the run is launched in.
MODEL = "models/Qwen2.5-7B"
DATA = "data/dolly.json"
OUTPUT = "out/qlora"
INIT_ADAPTER = None
OVERWRITE = False

TEMPLATE = "auto"  # auto, alpaca, chat or model
TRAIN_ON = "response"  # response or all
ON_INVALID = "error"  # error or skip
VALIDATION_SPLIT = 0.05
SEED = 42
# peft-ts computes in f32 over 16-bit weights; PyTorch computes in the weights' dtype.
COMPUTE_DTYPE = torch.float32

ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n"
    "\n"
    "### Instruction:\n"
    "{instruction}\n"
    "\n"
    "### Input:\n"
    "{input}\n"
    "\n"
    "### Response:\n"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n"
    "\n"
    "### Instruction:\n"
    "{instruction}\n"
    "\n"
    "### Response:\n"
)
# The `chat` template of peft-ts: <|role|> tags, the assistant turn and EOS trained.
TAG_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>\n{% generation %}{{ message['content'] }}\n{{ eos_token }}{% endgeneration %}"
    "{% else %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endif %}"
    "{% endfor %}"
)
ROLES = {
    "messages": ("role", "content", {"system": "system", "user": "user", "assistant": "assistant"}),
    "conversations": ("from", "value", {"system": "system", "human": "user", "gpt": "assistant"}),
}


def read_records(path):
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return [(f"{path}[{i}]", r) for i, r in enumerate(json.loads(text))]
    return [(f"{path}:{n}", json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def text_field(record, name, required):
    value = record.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def parse(record):
    """A record as ("instruction", instruction, input, output) or ("chat", messages)."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    for field, (role_key, text_key, roles) in ROLES.items():
        if field in record:
            turns = record[field]
            if not isinstance(turns, list) or not turns:
                raise ValueError(f"{field}: expected a non-empty array of turns")
            messages = []
            for i, turn in enumerate(turns):
                role = roles.get(turn.get(role_key)) if isinstance(turn, dict) else None
                content = turn.get(text_key) if isinstance(turn, dict) else None
                if role is None or not isinstance(content, str) or (role != "system" and not content.strip()):
                    raise ValueError(f"{field}[{i}]: expected a known {role_key} and a non-empty {text_key}")
                messages.append({"role": role, "content": content})
            if not any(m["role"] == "assistant" for m in messages):
                raise ValueError(f"{field}: expected at least one assistant turn to train on")
            return ("chat", messages)
    if "instruction" in record and ("output" in record or "response" in record):
        dolly = "output" not in record
        return (
            "instruction",
            text_field(record, "instruction", True),
            text_field(record, "context" if dolly else "input", False),
            text_field(record, "response" if dolly else "output", True),
        )
    raise ValueError("expected an Alpaca, Dolly, chat (messages) or ShareGPT (conversations) record")


def to_row(example, template):
    """A prompt-completion row (alpaca) or a conversational row (chat, model)."""
    if template == "alpaca":
        if example[0] == "chat":
            roles = [m["role"] for m in example[1]]
            if roles != ["user", "assistant"]:
                raise ValueError(f"a {','.join(roles)} conversation needs a chat template, not alpaca")
            example = ("instruction", example[1][0]["content"], "", example[1][1]["content"])
        _, instruction, context, output = example
        prompt = ALPACA_PROMPT_INPUT if context else ALPACA_PROMPT_NO_INPUT
        # TRL appends the EOS token to the completion, as train appends it to the response.
        # One pass, as train fills the placeholders: text in a field is never expanded again.
        values = {"instruction": instruction, "input": context}
        return {"prompt": re.sub(r"\{(instruction|input)\}", lambda m: values[m.group(1)], prompt), "completion": output}
    if example[0] == "chat":
        return {"messages": example[1]}
    _, instruction, context, output = example
    user = f"{instruction}\n\n{context}" if context else instruction
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": output}]}


def load_rows(tokenizer):
    rows, invalid = [], []
    for where, record in read_records(DATA):
        try:
            example = parse(record)
            template = TEMPLATE
            if template == "auto":
                template = "alpaca" if example[0] == "instruction" else ("model" if tokenizer.chat_template else "chat")
            rows.append((template, to_row(example, template)))
        except ValueError as error:
            invalid.append(f"{where}: {error}")
    if invalid:
        listed = "\n".join(f"  {line}" for line in invalid[:10]) + (f"\n  ... and {len(invalid) - 10} more" if len(invalid) > 10 else "")
        if ON_INVALID == "error":
            sys.exit(f"{DATA}: {len(invalid)} invalid records (fix them, or set ON_INVALID = \"skip\"):\n{listed}")
        print(f"data: skipped {len(invalid)} invalid records:\n{listed}", file=sys.stderr)
    templates = {t for t, _ in rows}
    if not rows or len(templates) != 1:
        sys.exit(f"{DATA}: expected records of one kind with one template, got {sorted(templates) or 'none'}")
    return templates.pop(), Dataset.from_list([row for _, row in rows])


def main():
    if os.path.isdir(OUTPUT) and os.listdir(OUTPUT) and not OVERWRITE:
        sys.exit(f"{OUTPUT}: expected an empty or new output directory (set OVERWRITE = True to write into it)")
    set_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    template, dataset = load_rows(tokenizer)
    if template == "chat":
        # BOS as the tokenizer adds it to plain text, since a chat template is tokenized without it.
        adds_bos = tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
        tokenizer.chat_template = ("{{ bos_token }}" if adds_bos else "") + TAG_CHAT_TEMPLATE
    conversational = template != "alpaca"
    split = dataset.train_test_split(test_size=VALIDATION_SPLIT, seed=SEED) if VALIDATION_SPLIT > 0 else None
    zero3 = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3" or "--deepspeed" in sys.argv

    # Before the model, so that DeepSpeed ZeRO-3 can shard it while it loads.
    args = SFTConfig(
        output_dir=OUTPUT,
        # data
        max_length=512,
        packing=False,
        completion_only_loss=TRAIN_ON == "response" and not conversational,
        assistant_only_loss=TRAIN_ON == "response" and conversational,
        # optimisation
        learning_rate=0.0002,
        lr_scheduler_type="cosine",
        warmup_steps=0.03,  # a fraction of the total steps, rounded up
        num_train_epochs=1.0,
        max_steps=2000,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        gradient_accumulation_steps=4,
        average_tokens_across_devices=True,
        max_grad_norm=0.3,
        optim="paged_adamw_8bit",
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=False,
        fp16=False,
        tf32=False,  # full f32 matmuls, as peft-ts computes
        # run
        seed=SEED,
        data_seed=SEED,
        eval_strategy="steps" if split else "no",
        eval_steps=100,
        eval_on_start=split is not None,
        save_strategy="steps",
        save_steps=100,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=1,
        report_to="none",
        deepspeed=sys.argv[sys.argv.index("--deepspeed") + 1] if "--deepspeed" in sys.argv else None,
    )

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=COMPUTE_DTYPE,
        bnb_4bit_quant_storage=COMPUTE_DTYPE,  # lets DeepSpeed ZeRO-3 shard the 4-bit weights
    )
    model = AutoModelForCausalLM.from_pretrained(
        MODEL,
        dtype=COMPUTE_DTYPE,
        quantization_config=quantization,
        # One whole copy per process for data parallel; ZeRO-3 places the shards itself.
        device_map=None if zero3 else {"": PartialState().local_process_index},
    )
    peft_config = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        target_modules="all-linear",
        modules_to_save=["embed_tokens"],
        use_rslora=False,
        bias="none",
        task_type="CAUSAL_LM",
    )

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=split["train"] if split else dataset,
        eval_dataset=split["test"] if split else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=3)],
    )
    # LoRA weights stay f32, as peft-ts keeps them (TRL casts them to bf16 over a 4-bit base).
    if not zero3:
        for parameter in trainer.model.parameters():
            if parameter.requires_grad:
                parameter.data = parameter.data.float()
    trainer.train()
    if split:
        trainer.evaluate()  # after the last step too, as train does
    trainer.save_model(os.path.join(OUTPUT, "adapter"))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(os.path.join(OUTPUT, "adapter"))


if __name__ == "__main__":
    main()
