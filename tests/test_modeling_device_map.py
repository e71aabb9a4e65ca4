"""from_pretrained(device_map=...) through accelerate (polyformer/pt/device_map.py): inferred and given maps on
the tiny fixture checkpoints, disk offload forced by a small `max_memory`, against the plain load of the same
checkpoint (itself checked against transformers 4.37.2 by the parity tests); generate() on a dispatched model;
the memory a disk-offloaded load holds; the errors. The GPU split runs where CUDA is present."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import polyformer

pytest.importorskip("accelerate")

from helpers.parity import load_cases  # noqa: E402
from helpers.tolerance import assert_close  # noqa: E402
from polyformer import (  # noqa: E402
    CodeGenForCausalLM, DistilBertForMaskedLM, DistilBertForSequenceClassification, GPTJForCausalLM,
    IdeficsForVisionText2Text, LlamaConfig,
    LlamaForCausalLM, MvpForConditionalGeneration, TorchAoConfig,
)
from polyformer.pt.device_map import is_dispatched  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
IDS = torch.tensor([[1, 5, 7, 9, 3, 4], [2, 8, 6, 4, 11, 12]])
CHECKPOINTS = {
    "llama": (LlamaForCausalLM, FIXTURES / "llama" / "causal_lm"),
    "codegen": (CodeGenForCausalLM, FIXTURES / "codegen" / "causal_lm"),
    "gptj": (GPTJForCausalLM, FIXTURES / "gptj" / "causal_lm"),
    "distilbert": (DistilBertForMaskedLM, FIXTURES / "distilbert" / "masked_lm"),
    "mvp": (MvpForConditionalGeneration, FIXTURES / "mvp" / "conditional_generation"),
}


def _inputs(model):
    if getattr(model.config, "is_encoder_decoder", False):
        return {"input_ids": IDS, "decoder_input_ids": IDS[:, :3]}
    return {"input_ids": IDS}


def _logits(model):
    with torch.no_grad():
        return model(**_inputs(model)).logits


def _weight_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _check_covers(model):
    """hf_device_map gives a device to every parameter and buffer (through a module prefix)."""
    device_map = model.hf_device_map
    for name in [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]:
        parts = name.split(".")
        assert any(".".join(parts[:i]) in device_map for i in range(len(parts) + 1)), name


@pytest.mark.parametrize("strategy", ["auto", "sequential", "balanced"])
@pytest.mark.parametrize("family", sorted(CHECKPOINTS))
def test_inferred_map_with_disk_offload_matches_plain_load(family, strategy, tmp_path):
    """max_memory of half the weights: the first modules stay on the CPU, the rest go to disk (read from the
    checkpoint's safetensors at each forward); logits and greedy ids are the plain load's."""
    cls, path = CHECKPOINTS[family]
    plain = cls.from_pretrained(path)
    model = cls.from_pretrained(path, device_map=strategy, max_memory={"cpu": _weight_bytes(plain) // 2},
                                offload_folder=tmp_path)
    assert "disk" in model.hf_device_map.values()
    _check_covers(model)
    assert is_dispatched(model)
    assert any(p.is_meta for p in model.parameters())  # the disk weights are not in memory
    assert_close(_logits(model), _logits(plain), name=f"{family} {strategy} logits")
    if model.can_generate():
        settings = dict(max_new_tokens=6, do_sample=False)
        assert model.generate(IDS, **settings).tolist() == plain.generate(IDS, **settings).tolist()


@pytest.mark.parametrize("divisor", [3, 6])
@pytest.mark.parametrize("case_dir", ["causal_lm", "causal_lm_resampler"])
def test_idefics_with_images_on_a_disk_offloaded_model(case_dir, divisor, tmp_path):
    """IDEFICS with a third of its weights' size as CPU budget (the embeddings stay, the vision tower,
    perceiver, layers and cross-attention layers go to disk) or a sixth (the whole model on disk, {"": "disk"},
    where the blocks preload their weights): logits and greedy ids with images are the plain load's."""
    case = next(c for c in load_cases("idefics") if c.dir.name == case_dir and c.call == "no_labels")
    inputs = case.inputs()
    plain = IdeficsForVisionText2Text.from_pretrained(case.dir)
    model = IdeficsForVisionText2Text.from_pretrained(case.dir, device_map="sequential", offload_folder=tmp_path,
                                                      max_memory={"cpu": _weight_bytes(plain) // divisor})
    assert "disk" in model.hf_device_map.values()
    _check_covers(model)
    with torch.no_grad():
        assert_close(model(**inputs).logits, plain(**inputs).logits)
    settings = dict(max_new_tokens=4, do_sample=False)
    assert model.generate(**inputs, **settings).tolist() == plain.generate(**inputs, **settings).tolist()


@pytest.mark.parametrize("divisor", [2, 4])
@pytest.mark.parametrize("family, case_dir", [("canine", "model"), ("canine", "seqcls_single_label"),
                                              ("groupvit", "model")])
def test_encoder_families_with_disk_offload(family, case_dir, divisor, tmp_path):
    """CANINE and GroupViT (no `_no_split_modules` in 4.37, defined here) split over CPU and disk, or wholly on
    disk: the first output is the plain load's."""
    case = next(c for c in load_cases(family) if c.dir.name == case_dir)
    cls = getattr(polyformer, case.model_class)
    inputs = {k: v for k, v in case.inputs().items() if k != "labels"}
    plain = cls.from_pretrained(case.dir)
    model = cls.from_pretrained(case.dir, device_map="sequential", offload_folder=tmp_path,
                                max_memory={"cpu": _weight_bytes(plain) // divisor})
    assert "disk" in model.hf_device_map.values()
    _check_covers(model)
    with torch.no_grad():
        assert_close(model(**inputs)[0], plain(**inputs)[0])


@pytest.mark.parametrize("family", ["distilbert", "mvp"])
def test_save_pretrained_of_a_disk_offloaded_model(family, tmp_path):
    """The offloaded weights are read back for saving; tied weights are saved once, as by the plain load."""
    cls, path = CHECKPOINTS[family]
    plain = cls.from_pretrained(path)
    model = cls.from_pretrained(path, device_map="sequential", max_memory={"cpu": _weight_bytes(plain) // 3},
                                offload_folder=tmp_path / "offload")
    assert "disk" in model.hf_device_map.values()
    model.save_pretrained(tmp_path / "saved")
    plain.save_pretrained(tmp_path / "plain")
    from safetensors.torch import load_file

    saved, expected = load_file(tmp_path / "saved" / "model.safetensors"), load_file(tmp_path / "plain" / "model.safetensors")
    assert sorted(saved) == sorted(expected)
    for key in expected:
        assert_close(saved[key], expected[key], atol=0, rtol=0, name=key)


def test_inferred_map_keeps_blocks_whole_and_splits_cpu_and_disk(tmp_path):
    plain = LlamaForCausalLM.from_pretrained(CHECKPOINTS["llama"][1])
    budget = plain.model.embed_tokens.weight.numel() * 4 + _weight_bytes(plain.model.layers[0]) + 4096
    model = LlamaForCausalLM.from_pretrained(CHECKPOINTS["llama"][1], device_map="sequential",
                                             max_memory={"cpu": budget}, offload_folder=tmp_path)
    devices = set(model.hf_device_map.values())
    assert devices == {"cpu", "disk"}, model.hf_device_map
    for key in model.hf_device_map:  # never inside a LlamaDecoderLayer
        parts = key.split(".")
        assert not (len(parts) > 3 and parts[1] == "layers"), key
    assert_close(_logits(model), _logits(plain))


def test_dict_map_from_a_bin_checkpoint_writes_dat_files(tmp_path):
    """A .bin checkpoint's disk weights are written to offload_folder (accelerate's .dat files and index.json);
    the tied output projection follows its embedding to disk."""
    path = FIXTURES / "distilbert" / "masked_lm_bin"
    plain = DistilBertForMaskedLM.from_pretrained(path)
    device_map = {"distilbert.embeddings": "disk", "distilbert.transformer.layer.0": "cpu",
                  "distilbert.transformer.layer.1": "disk", "vocab_transform": "cpu", "vocab_layer_norm": "disk",
                  "vocab_projector": "disk"}
    model = DistilBertForMaskedLM.from_pretrained(path, device_map=device_map, offload_folder=tmp_path)
    assert model.hf_device_map == device_map
    index = json.loads((tmp_path / "index.json").read_text())
    assert "distilbert.embeddings.word_embeddings.weight" in index
    assert (tmp_path / "distilbert.transformer.layer.1.ffn.lin1.weight.dat").is_file()
    assert model.distilbert.embeddings.word_embeddings.weight.is_meta
    assert not model.distilbert.transformer.layer[0].ffn.lin1.weight.is_meta
    assert_close(_logits(model), _logits(plain))


def test_sharded_checkpoint_and_dtype_conversion_on_disk(tmp_path):
    """Sharded safetensors, loaded in bfloat16: the disk weights are converted as they are read back."""
    path = FIXTURES / "distilbert" / "masked_lm_sharded"
    plain = DistilBertForMaskedLM.from_pretrained(path, torch_dtype=torch.bfloat16)
    model = DistilBertForMaskedLM.from_pretrained(path, torch_dtype=torch.bfloat16, offload_folder=tmp_path,
                                                  device_map={"distilbert": "disk", "vocab_transform": "cpu",
                                                              "vocab_layer_norm": "cpu", "vocab_projector": "disk"})
    assert model.dtype == torch.bfloat16
    logits = _logits(model)
    assert logits.dtype == torch.bfloat16
    assert_close(logits, _logits(plain), atol=0, rtol=0)  # the same bfloat16 weights, the same operations


def test_newly_initialised_weights_go_to_their_device(tmp_path):
    """A classifier the checkpoint lacks is initialised, then offloaded like any weight (a .dat file)."""
    path = FIXTURES / "distilbert" / "masked_lm"
    torch.manual_seed(0)
    plain = DistilBertForSequenceClassification.from_pretrained(path)
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification.from_pretrained(
        path, device_map={"distilbert": "cpu", "pre_classifier": "disk", "classifier": "disk", "dropout": "cpu"},
        offload_folder=tmp_path)
    assert (tmp_path / "classifier.weight.dat").is_file()
    assert_close(_logits(model), _logits(plain))


@pytest.mark.parametrize("device_map", ["cpu", torch.device("cpu"), {"": "cpu"}, "auto"])
def test_one_device_maps_load_without_hooks(device_map):
    cls, path = CHECKPOINTS["llama"]
    model = cls.from_pretrained(path, device_map=device_map, low_cpu_mem_usage=True, offload_state_dict=False)
    assert model.hf_device_map == {"": "cpu"}
    assert not is_dispatched(model)
    assert_close(_logits(model), _logits(cls.from_pretrained(path)), atol=0, rtol=0)


def test_generate_compile_on_a_dispatched_model_decodes_eagerly(tmp_path, caplog):
    cls, path = CHECKPOINTS["llama"]
    plain = cls.from_pretrained(path)
    model = cls.from_pretrained(path, device_map={"model.embed_tokens": "cpu", "model.layers": "disk",
                                                  "model.norm": "cpu", "lm_head": "disk"}, offload_folder=tmp_path)
    settings = dict(max_new_tokens=5, do_sample=False)
    with caplog.at_level("INFO", logger="polyformer.generation.static_step"):
        ids = model.generate(IDS, compile=True, **settings)
    assert "dispatched" in caplog.text
    assert ids.tolist() == plain.generate(IDS, **settings).tolist()
    beams = dict(max_new_tokens=4, num_beams=2, do_sample=False)
    assert model.generate(IDS, **beams).tolist() == plain.generate(IDS, **beams).tolist()


def test_quantization_with_a_cpu_map_and_refused_with_disk(tmp_path):
    cls, path = CHECKPOINTS["llama"]
    config = TorchAoConfig("int8_weight_only")
    quantized = cls.from_pretrained(path, device_map="cpu", quantization_config=config)
    assert_close(_logits(quantized), _logits(cls.from_pretrained(path, quantization_config=config)), atol=0, rtol=0)
    with pytest.raises(NotImplementedError, match="device_map"):
        cls.from_pretrained(path, device_map={"": "disk"}, offload_folder=tmp_path, quantization_config=config)


def test_outputs_rebuilt_from_a_mapping():
    """accelerate's hooks rebuild an output as `type(out)({name: value})` when they move it; transformers'
    ModelOutput takes that, and so does polyformer's."""
    from polyformer.outputs import CausalLMOutputWithPast

    logits = torch.ones(1, 2, 3)
    out = CausalLMOutputWithPast({"logits": logits, "past_key_values": None})
    assert out.logits is logits and out.loss is None
    assert list(out.keys()) == ["logits"] and out[0] is logits and out.to_tuple() == (logits,)


# --- errors -----------------------------------------------------------------------------------------------
LLAMA = CHECKPOINTS["llama"][1]


def test_missing_accelerate_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)
    with pytest.raises(ImportError, match=r"pip install accelerate.*polyformer\[accelerate\]"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map="auto")


def test_disk_without_offload_folder():
    with pytest.raises(ValueError, match="offload_folder"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map={"": "disk"})
    with pytest.raises(ValueError, match="offload_folder"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map="auto", max_memory={"cpu": 1000})


@pytest.mark.parametrize("device", ["gpu", "tpu:0", -1, 1.5, "mps"])
def test_unknown_devices(device):
    with pytest.raises(ValueError, match="device_map"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map={"": device})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_gpu_without_cuda():
    with pytest.raises(ValueError, match="GPU 0"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map={"": 0})
    with pytest.raises(ValueError, match="GPU 0"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map="cuda:0")


def test_unknown_and_missing_module_names(tmp_path):
    with pytest.raises(ValueError, match=r"does not have: \['model.decoder'\]"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map={"model": "cpu", "lm_head": "cpu", "model.decoder": "cpu"})
    with pytest.raises(ValueError, match="lm_head.weight"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map={"model": "cpu"})
    with pytest.raises(TypeError, match="device_map"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map=["cpu"])


def test_tied_weights_on_two_devices(tmp_path):
    path = FIXTURES / "distilbert" / "masked_lm"
    with pytest.raises(ValueError, match="tied"):
        DistilBertForMaskedLM.from_pretrained(path, device_map={"distilbert": "cpu", "vocab_transform": "cpu",
                                                                "vocab_layer_norm": "cpu", "vocab_projector": "disk"},
                                              offload_folder=tmp_path)


def test_argument_checks(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="low_cpu_mem_usage"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map="cpu", low_cpu_mem_usage=False)
    with pytest.raises(ValueError, match="device_map"):
        LlamaForCausalLM.from_pretrained(LLAMA, offload_folder=tmp_path)
    with pytest.raises(ValueError, match="device_map"):
        LlamaForCausalLM.from_pretrained(LLAMA, max_memory={"cpu": "1GB"})
    with pytest.raises(TypeError, match="low_cpu_mem_usage"):
        LlamaForCausalLM.from_pretrained(LLAMA, low_cpu_mem_usage="yes")
    with pytest.raises(ValueError, match="Device gpu is not recognized"):  # accelerate's own check
        LlamaForCausalLM.from_pretrained(LLAMA, device_map="auto", max_memory={"gpu": "1GB"})
    monkeypatch.setattr(LlamaForCausalLM, "_no_split_modules", None)
    with pytest.raises(ValueError, match="_no_split_modules"):
        LlamaForCausalLM.from_pretrained(LLAMA, device_map="auto")


# --- memory -----------------------------------------------------------------------------------------------
_MEASURE = textwrap.dedent("""
    import json, sys, torch
    import accelerate  # imported by both runs before the measure: only the loads differ
    from polyformer import LlamaForCausalLM

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return None

    path, mode, folder, budget, warm_up = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    ids = torch.tensor([[1, 5, 7, 9, 3, 4]])

    def load(path, budget):
        if mode == "plain":
            return LlamaForCausalLM.from_pretrained(path)
        return LlamaForCausalLM.from_pretrained(path, device_map="sequential", max_memory={"cpu": budget},
                                                offload_folder=folder)

    with torch.no_grad():  # the same load of a tiny checkpoint first: what is imported or set up once is not counted
        load(warm_up, 10_000)(ids)
    try:  # start the peak (VmHWM) from here
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = status("VmRSS")
    model = load(path, budget)
    in_memory = sum(t.numel() * t.element_size() for t in model.parameters() if not t.is_meta)
    with torch.no_grad():
        logits = model(ids).logits
    torch.save(logits, folder + "/logits-" + mode + ".pt")
    print(json.dumps({"peak": status("VmHWM") - before, "in_memory": in_memory}))
""")


def _measure(path, mode, folder, budget):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1])] + sys.path))
    args = [str(path), mode, str(folder), str(budget), str(CHECKPOINTS["llama"][1])]
    result = subprocess.run([sys.executable, "-c", _MEASURE, *args], env=env,
                            capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_disk_offload_holds_less_memory_than_the_plain_load(tmp_path):
    """A ~50 MB random Llama (float16 on disk, loaded as float32), in fresh processes: the plain load holds every
    weight (the float32 copies); the offloaded one keeps at most its max_memory of weights in memory, its peak
    resident memory (VmHWM, from before the load, through a forward) stays well below the plain load's, and the
    logits are the plain load's."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=1024, num_hidden_layers=12,
                         num_attention_heads=4, max_position_embeddings=64)
    checkpoint = tmp_path / "model"
    LlamaForCausalLM(config).half().save_pretrained(checkpoint)
    total = sum(p.numel() for p in LlamaForCausalLM(config).parameters()) * 4  # float32 bytes
    budget = total // 8
    (tmp_path / "plain").mkdir()
    plain = _measure(checkpoint, "plain", tmp_path / "plain", budget)
    offload = _measure(checkpoint, "offload", tmp_path, budget)
    assert plain["in_memory"] == total
    assert offload["in_memory"] <= budget
    assert plain["peak"] >= total  # the float32 weights at least
    assert offload["peak"] < plain["peak"] / 2, (offload, plain, total)
    assert offload["peak"] < total * 3 / 4, (offload, plain, total)  # never every weight in memory at once
    assert_close(torch.load(tmp_path / "logits-offload.pt", weights_only=True),
                 torch.load(tmp_path / "plain" / "logits-plain.pt", weights_only=True))


# --- GPU --------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_cpu_and_disk_split(tmp_path):
    """Blocks on GPU 0, the CPU (offloaded: moved to the GPU at each forward) and disk; the model's device is
    the GPU; logits and greedy ids against the plain CPU load (tolerance: GPU against CPU kernels)."""
    cls, path = CHECKPOINTS["llama"]
    plain = cls.from_pretrained(path)
    device_map = {"model.embed_tokens": 0, "model.layers.0": "cpu", "model.layers.1": "disk", "model.norm": 0,
                  "lm_head": 0}
    model = cls.from_pretrained(path, device_map=device_map, offload_folder=tmp_path)
    assert model.hf_device_map == device_map
    assert model.model.embed_tokens.weight.device.type == "cuda"
    assert model.device.type == "cuda"
    with torch.no_grad():
        logits = model(input_ids=IDS.to(model.device)).logits
    assert_close(logits.cpu(), _logits(plain), atol=1e-4, rtol=1e-4)
    settings = dict(max_new_tokens=5, do_sample=False)
    ids = model.generate(IDS.to(model.device), **settings)
    assert ids.cpu().tolist() == plain.generate(IDS, **settings).tolist()
    auto = cls.from_pretrained(path, device_map="auto", max_memory={0: _weight_bytes(plain) // 2, "cpu": "1GiB"})
    assert 0 in auto.hf_device_map.values()
    with torch.no_grad():
        assert_close(auto(input_ids=IDS.to(0)).logits.cpu(), _logits(plain), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device_map", ["sequential", {"": "disk"}])
def test_text_generation_pipeline_on_a_disk_offloaded_model(device_map, tmp_path):
    """pipeline(device_map=...): the model dispatched with some (or all) of its weights on disk generates the
    text of the plain pipeline; the inputs go to the CPU."""
    from polyformer import pipeline

    folder = str(Path(__file__).resolve().parent / "fixtures" / "pipelines" / "text_generation" / "llama")
    plain = pipeline("text-generation", model=folder)
    budget = {"max_memory": {"cpu": _weight_bytes(plain.model) // 2}} if device_map == "sequential" else {}
    offloaded = pipeline("text-generation", model=folder, device_map=device_map,
                         model_kwargs={"offload_folder": str(tmp_path), **budget})
    assert "disk" in offloaded.model.hf_device_map.values() and offloaded.device == torch.device("cpu")
    prompts = ["hello world", "the cat"]
    settings = dict(max_new_tokens=5, do_sample=False)
    assert offloaded(prompts, **settings) == plain(prompts, **settings)
