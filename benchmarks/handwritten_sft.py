"""The hand-written baseline: what a competent TRL user writes for the benchmark job.

Same job as benchmarks/configs/alpaca_lora*.yaml / alpaca_qlora.yaml compiled by mccompile:
LoRA (r 16, alpha 32, dropout 0.05, q_proj + v_proj) SFT of the benchmark Llama on an
Alpaca-format json file, prompt = instruction, response = output, the same plain prompt
format the generated program uses without a chat template ("### Instruction:\\n...\\n\\n
### Response:\\n"), loss on the response only, max_length 512, batch 4, no gradient
accumulation, adamw_torch, lr 1e-4 linear, seed 42, fp32, no gradient checkpointing, with or
without packing (TRL's best-fit-decreasing packing, which TRL runs padding-free).

It leaves the data to TRL in its prompt-completion format: TRL adds the eos token, tokenizes,
builds the completion mask and labels, truncates / packs and pads (dynamically, per batch).

    python benchmarks/handwritten_sft.py --model DIR --dataset FILE.json [--packing] [--quantization nf4]
        [--max-steps N] [--output-dir DIR]

benchmarks/gpu_check.py also passes --bf16, --target-modules all-linear, --gradient-checkpointing
and --attn-implementation (the GPU job's settings); without them the defaults above hold.
"""

import argparse

import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from trl import SFTConfig, SFTTrainer

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--dataset", required=True)
parser.add_argument("--output-dir", default="./benchmarks/.cache/runs/handwritten")
parser.add_argument("--max-steps", type=int, default=-1)
parser.add_argument("--max-length", type=int, default=512)
parser.add_argument("--batch-size", type=int, default=4)
parser.add_argument("--packing", action="store_true")
parser.add_argument("--quantization", choices=["nf4"], default=None)
parser.add_argument("--bf16", action="store_true", help="bf16 weights and training")
parser.add_argument("--target-modules", default="q_proj,v_proj", help="comma list, or all-linear")
parser.add_argument("--gradient-checkpointing", action="store_true")
parser.add_argument("--attn-implementation", default=None)
args = parser.parse_args()
dtype = torch.bfloat16 if args.bf16 else torch.float32


def to_prompt_completion(row):
    return {
        "prompt": f"### Instruction:\n{row['instruction']}\n\n### Response:\n",
        "completion": row["output"],
    }


dataset = load_dataset("json", data_files=args.dataset, split="train")
dataset = dataset.map(to_prompt_completion, remove_columns=dataset.column_names)

tokenizer = AutoTokenizer.from_pretrained(args.model)
model_kwargs = {"dtype": dtype}
if args.attn_implementation:
    model_kwargs["attn_implementation"] = args.attn_implementation
if args.quantization == "nf4":
    model_kwargs["quantization_config"] = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
    )
    if torch.cuda.is_available():
        model_kwargs["device_map"] = {"": 0}
model = AutoModelForCausalLM.from_pretrained(args.model, **model_kwargs)

peft_config = LoraConfig(
    task_type="CAUSAL_LM",
    r=16,
    lora_alpha=32,
    lora_dropout=0.05,
    target_modules=(
        "all-linear" if args.target_modules == "all-linear" else args.target_modules.split(",")
    ),
)

training_args = SFTConfig(
    output_dir=args.output_dir,
    max_steps=args.max_steps,
    num_train_epochs=1,
    per_device_train_batch_size=args.batch_size,
    gradient_accumulation_steps=1,
    learning_rate=1e-4,
    lr_scheduler_type="linear",
    optim="adamw_torch",
    seed=42,
    bf16=args.bf16,
    use_cpu=args.bf16 and not torch.cuda.is_available(),  # transformers' bf16 on CPU needs it
    activation_checkpointing=args.gradient_checkpointing,
    max_length=args.max_length,
    packing=args.packing,
    logging_steps=10,
    save_strategy="no",
    report_to="none",
)

trainer = SFTTrainer(
    model=model,
    args=training_args,
    train_dataset=dataset,
    processing_class=tokenizer,
    peft_config=peft_config,
)
trainer.train()
trainer.save_model(args.output_dir)
