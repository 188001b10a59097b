"""Several LoRA adapters on one loaded base (models/adapters.py), with real llama.cpp, the bundled SmolLM2 GGUF and
real GGUF LoRA adapters: answers equal those of bases loaded with one adapter each, the LRU bound, the memory."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

import pytest

from adaptlab.config import AdaptlabConfig, GeneratorConfig
from adaptlab.errors import BackendError
from adaptlab.models.adapters import lora_problem
from adaptlab.models.factory import create_adapted_generator, open_shared_base
from adaptlab.models.llama_cpp import LlamaCppGenerator
from adaptlab.models.registry import default_gguf_path
from adaptlab.project import Project
from adaptlab.strategies.factory import build_strategy
from adaptlab.types import Generation, TextDelta

SETTINGS = GeneratorConfig(max_tokens=12)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def config(tmp_path: Path, max_loaded: int = 4, **sections) -> AdaptlabConfig:
    return AdaptlabConfig.model_validate({"home": str(tmp_path / "home"), "generator": {"max_tokens": 12},
                                          "serve": {"max_loaded_adapters": max_loaded}, **sections})


@pytest.fixture(scope="module")
def separately(lora_gguf) -> dict[int, str]:
    """What a base loaded with each adapter alone answers (seed → text); 0 is the bare base."""
    answers = {}
    for seed in (0, 1, 2, 3):
        generator = LlamaCppGenerator(SETTINGS, lora_path=str(lora_gguf(seed)) if seed else None)
        answers[seed] = generator.chat(QUESTION).text
        generator.llama.close()
    assert len(set(answers.values())) == 4, answers  # every adapter changes the answer: the comparisons mean something
    return answers


def streamed(generator) -> str:
    items = list(generator.stream_chat(QUESTION))
    assert isinstance(items[-1], Generation)
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == items[-1].text
    return items[-1].text


def test_adapters_switched_on_one_base_answer_as_bases_loaded_with_each(tmp_path, lora_gguf, separately) -> None:
    base = open_shared_base(config(tmp_path), SETTINGS)
    a, b = (create_adapted_generator(config(tmp_path), SETTINGS, base, lora_gguf(seed)) for seed in (1, 2))
    # The same prompt every time: without resetting the context at each switch, llama.cpp would reuse the prompt's
    # KV computed under the previous adapter and B would answer differently from a base loaded with B.
    assert [a.chat(QUESTION).text, b.chat(QUESTION).text, a.chat(QUESTION).text] == [separately[1], separately[2],
                                                                                      separately[1]]
    assert [streamed(b), streamed(a), streamed(b)] == [separately[2], separately[1], separately[2]]
    generation = b.chat(QUESTION)
    assert generation.model == b.name == f"llama_cpp:{default_gguf_path().name}+{lora_gguf(2).name}"
    assert generation.usage.prompt_tokens > 0 and generation.usage.completion_tokens > 0
    with base.using(None) as llama:  # the bare base too, after an adapter
        assert LlamaCppGenerator(SETTINGS, llama=llama).chat(QUESTION).text == separately[0]
    base.close()


def test_at_most_max_loaded_adapters_stay_loaded_least_recently_used_freed(tmp_path, lora_gguf, separately) -> None:
    settings = config(tmp_path, max_loaded=2)
    base = open_shared_base(settings, SETTINGS)
    paths = {seed: lora_gguf(seed) for seed in (1, 2, 3)}
    generators = {seed: create_adapted_generator(settings, SETTINGS, base, path) for seed, path in paths.items()}
    # Each generator loads its adapter when built: the third pushed the first out.
    assert base.loaded() == [str(paths[2]), str(paths[3])]
    assert generators[2].chat(QUESTION).text == separately[2]  # 2 is now the most recently used
    assert base.loaded() == [str(paths[3]), str(paths[2])]
    # 1 is loaded again on demand, freeing 3 (the least recently used), and answers as before.
    assert generators[1].chat(QUESTION).text == separately[1]
    assert base.loaded() == [str(paths[2]), str(paths[1])]
    assert generators[3].chat(QUESTION).text == separately[3]
    assert base.loaded() == [str(paths[1]), str(paths[3])]
    # Unloading the active adapter leaves the context on the bare base; its next use loads it again.
    assert base.unload(paths[3]) and not base.is_loaded(paths[3]) and not base.unload(paths[3])
    assert generators[3].chat(QUESTION).text == separately[3]
    base.close()


def test_a_stream_holds_the_base_until_it_ends_or_is_closed(tmp_path, lora_gguf, separately) -> None:
    settings = config(tmp_path)
    base = open_shared_base(settings, SETTINGS)
    a, b = (create_adapted_generator(settings, SETTINGS, base, lora_gguf(seed)) for seed in (1, 2))
    stream = a.stream_chat(QUESTION)
    assert isinstance(next(stream), TextDelta)
    answers: list[str] = []
    other = threading.Thread(target=lambda: answers.append(b.chat(QUESTION).text))
    other.start()
    other.join(timeout=1.0)
    assert other.is_alive() and not answers  # B waits: the context is mid-generation with A
    stream.close()  # the client hung up
    other.join(timeout=60)
    assert answers == [separately[2]]
    base.close()


def test_files_that_are_no_lora_adapter_fail_with_the_reason(tmp_path, lora_gguf) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all" * 10)
    model = default_gguf_path()
    assert lora_problem(lora_gguf(1), "llama") is None
    assert "not a GGUF file" in (lora_problem(junk) or "")
    assert "not a LoRA adapter" in (lora_problem(model) or "")
    assert "adapts a 'llama' model; the base is 'qwen2'" in (lora_problem(lora_gguf(1), "qwen2") or "")
    settings = config(tmp_path)
    base = open_shared_base(settings, SETTINGS)
    for path, reason in ((junk, "not a GGUF file"), (model, "not a LoRA adapter")):
        with pytest.raises(BackendError, match=reason):
            create_adapted_generator(settings, SETTINGS, base, path)
    assert base.loaded() == []
    base.close()


def _llamas() -> set[int]:
    from llama_cpp import Llama

    return {id(o) for o in gc.get_objects() if type(o) is Llama}


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_fine_tuned_strategies_on_one_base_load_the_base_once(tmp_path, lora_gguf) -> None:
    strategies = {f"ft{seed}": {"kind": "finetuned", "adapter": str(lora_gguf(seed))} for seed in (1, 2, 3)}
    strategies["ftr"] = {"kind": "finetuned_rag", "adapter": str(lora_gguf(1))}
    project = Project(config(tmp_path, strategies=strategies))
    before = _llamas()
    first = build_strategy(project, "ft1")
    after_first = _rss_mb()
    others = [build_strategy(project, name) for name in ("ft2", "ft3")]
    grown = _rss_mb() - after_first
    # Each further adapter costs its own few MB (~4 MB files here), not another base (~100 MB of weights that a
    # Llama loaded with lora_path reads into memory, plus its KV cache).
    assert grown < 30, f"{grown:.0f} MB for two more fine-tuned strategies on the same base"
    build_strategy(project, "ftr")  # a fine-tuned rag strategy (its retrieval is not the point here)
    assert len(_llamas() - before) == 1  # four fine-tuned strategies, one loaded base
    answers = [strategy.answer("What is the capital of France?") for strategy in (first, *others)]
    assert [answer.model for answer in answers] == [f"llama_cpp:{default_gguf_path().name}+{lora_gguf(seed).name}"
                                                    for seed in (1, 2, 3)]
    assert all(answer.text for answer in answers)


def test_an_adapter_rewritten_in_place_is_loaded_again(tmp_path, lora_gguf, separately) -> None:
    """`adaptlab train --export` into the same path (the bench's studies do) must not answer with the old file."""
    settings = config(tmp_path)
    base = open_shared_base(settings, SETTINGS)
    path = tmp_path / "adapter.gguf"
    path.write_bytes(lora_gguf(1).read_bytes())
    generator = create_adapted_generator(settings, SETTINGS, base, path)
    assert generator.chat(QUESTION).text == separately[1]
    path.write_bytes(lora_gguf(2).read_bytes())
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))  # a coarse clock still sees it
    assert generator.chat(QUESTION).text == separately[2]
    assert base.loaded() == [str(path)]
    base.close()
