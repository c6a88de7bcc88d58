"""The embedded model's decoder as a Hugging Face `MistralForCausalLM` folder, for `transformers serve`.

Usage: python make_text_model.py SRC DST, where SRC is the HF-layout pixtral-tiny-screens folder
(../shared/models/pixtral-tiny-screens: LlavaForConditionalGeneration). DST gets the text config,
the `language_model.*` tensors renamed to MistralForCausalLM's names (values untouched), the same
tekken.json, the model's prompt layout as a chat template, and the token ids of <s> and </s>.
Text only: transformers' Pixtral processor needs torchvision, which has no CPU build matching
CPU torch in this machine's package index.
"""
import json
import os
import shutil
import sys

from safetensors import safe_open
from safetensors.torch import save_file

# <s>[INST]text[/INST], the layout the model was trained on (its README); images are not placed.
CHAT_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}{%- if message['role'] == 'user' %}[INST]"
    "{%- if message['content'] is string %}{{- message['content'] }}{%- else %}"
    "{%- for block in message['content'] %}{%- if block['type'] == 'text' %}{{- block['text'] }}{%- endif %}{%- endfor %}"
    "{%- endif %}[/INST]{%- elif message['role'] == 'assistant' %}"
    "{%- if message['content'] is string %}{{- message['content'] }}{%- else %}"
    "{%- for block in message['content'] %}{%- if block['type'] == 'text' %}{{- block['text'] }}{%- endif %}{%- endfor %}"
    "{%- endif %}{{- eos_token }}{%- endif %}{%- endfor %}"
)


def main(src: str, dst: str) -> None:
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(src, "config.json")) as f:
        text = dict(json.load(f)["text_config"])
    text["architectures"] = ["MistralForCausalLM"]
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(text, f, indent=1)
    tensors = {}
    with safe_open(os.path.join(src, "model.safetensors"), "pt") as f:
        for name in f.keys():
            if name.startswith("language_model."):
                tensors[name[len("language_model."):]] = f.get_tensor(name)
    save_file(tensors, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    shutil.copyfile(os.path.join(src, "tekken.json"), os.path.join(dst, "tekken.json"))
    with open(os.path.join(dst, "chat_template.jinja"), "w") as f:
        f.write(CHAT_TEMPLATE)
    with open(os.path.join(dst, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, f)
    with open(os.path.join(dst, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": text["bos_token_id"], "eos_token_id": text["eos_token_id"]}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
