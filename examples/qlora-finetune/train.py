"""QLoRA fine-tuning of a causal LM on an instruction dataset (gpu-lol example)."""

import argparse

import torch
from datasets import load_dataset
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from trl import SFTConfig, SFTTrainer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_name_or_path", default="meta-llama/Llama-3.1-8B")
    parser.add_argument("--dataset", default="yahma/alpaca-cleaned")
    parser.add_argument("--per_device_train_batch_size", type=int, default=4)
    parser.add_argument("--max_seq_length", type=int, default=2048)
    parser.add_argument("--output_dir", default="out/qlora")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                             bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_use_double_quant=True)
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, quantization_config=bnb,
                                                 device_map="auto")
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    data = load_dataset(args.dataset, split="train")
    config = SFTConfig(output_dir=args.output_dir, per_device_train_batch_size=args.per_device_train_batch_size,
                       max_seq_length=args.max_seq_length, gradient_checkpointing=True, bf16=True,
                       learning_rate=2e-4, num_train_epochs=1, logging_steps=10)
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, peft_config=lora, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(args.output_dir)


if __name__ == "__main__":
    main()
