#!/usr/bin/env python3
"""Chat-template goldens for Tessera's Jinja subset, rendered by Python's jinja2 (as HF transformers
renders chat templates: trim_blocks and lstrip_blocks off, raise_exception available).

Templates: the real ones of the files given (GGUF tokenizer.chat_template — SmolLM2's and
Qwen2.5-Coder's ChatML with its tool-calling branches — or .jinja files such as Gemma's, from
llama.cpp's models/templates/google-gemma-2-2b-it.jinja, which Gemma 3's instruction models share), a
Gemma-style template with a system prefix, role checks and slicing, and one exercising filters,
tests, whitespace control and loop variables. Writes Tests/TesseraTokenizersTests/Goldens/templates.json.

Usage: pip install jinja2 gguf
       python3 scripts/goldens/make_template_goldens.py SmolLM2.gguf Qwen2.5-Coder.gguf google-gemma-2-2b-it.jinja
"""
import json
import pathlib
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment

GEMMA_STYLE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first_user_prefix = messages[0]['content'] + '\\n\\n' %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set first_user_prefix = \"\" %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = \"model\" %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
FEATURES = (
    "{#- a comment -#}\n{%- for m in messages if m.role != 'system' -%}\n"
    "  {{- loop.index }}/{{ loop.length }} {{ m.role | upper }}: {{ m.content | length }} chars"
    "{%- if m.content is string and 'quick' in m.content %} (quick){% endif %}"
    "{%- if not loop.last %}, {% endif -%}\n{%- endfor %}\n"
    "{{- ' | ' ~ (messages | length) ~ ' messages' }}{{ ' | ' + messages[-1]['content'][:5] }}"
    "{% set names = ['a', 'b'] %}{{ ' | ' + names | join('+') }}{{ ' | ' ~ (7 // 2) ~ ' ' ~ (7 % 3) ~ ' ' ~ (1.5 * 2) }}"
    "{{ ' | ' ~ (missing is defined) ~ ' ' ~ (messages is defined) ~ ' ' ~ ({'k': 1} | tojson) }}"
    "{{ ' | ' ~ messages[0].content.strip().startswith('You') }}"
)
NAMESPACE = (
    "{%- set ns = namespace(found=false, count=0, last='') -%}"
    "{%- for m in messages -%}{%- if m.role == 'system' %}{% set ns.found = true %}{% endif -%}"
    "{%- set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% set local = 1 %}{%- endfor -%}"
    "{{ ns.found }} {{ ns.count }} {{ ns.last }} {{ local is defined }}"
)
CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "  The quick brown fox?  "}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello. ✓"}, {"role": "user", "content": "Explain RoPE in one line."}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
]

def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=False, lstrip_blocks=False)
    def raise_exception(message):
        raise RuntimeError(message)
    env.globals["raise_exception"] = raise_exception
    templates = {"gemma-style": GEMMA_STYLE, "features": FEATURES, "namespace": NAMESPACE}
    # Real templates: from GGUF files (tokenizer.chat_template) and .jinja files, named after the file.
    for arg in sys.argv[1:]:
        path = pathlib.Path(arg)
        name = "smollm2" if "SmolLM2" in path.name else path.stem.split(".")[0].lower()
        if path.suffix == ".gguf":
            from gguf import GGUFReader
            f = GGUFReader(arg).fields.get("tokenizer.chat_template")
            if f is None:
                continue
            templates[name] = bytes(f.parts[f.data[0]]).decode("utf-8")
        else:
            templates[name] = path.read_text()
    cases = []
    for name, source in templates.items():
        for messages in CONVERSATIONS:
            for generation in [True, False]:
                case = {"template": name, "messages": messages, "add_generation_prompt": generation}
                try:
                    case["output"] = env.from_string(source).render(messages=messages, add_generation_prompt=generation, bos_token="<bos>")
                except RuntimeError as e:
                    case["error"] = str(e)
                cases.append(case)
    out = {"templates": templates, "cases": cases}
    path = pathlib.Path(__file__).resolve().parents[2] / "Tests/TesseraTokenizersTests/Goldens/templates.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1))
    print(f"wrote {path}: {len(cases)} cases")
    print(cases[2].get("output"))

if __name__ == "__main__":
    main()
