"""Loading the official layouts (tiny random-init folders written on the fly): components round
trip, both transformer layouts, sharded weights, dtypes, schedulers by their official names,
missing/corrupt/mismatched files, offline Hub downloads that fail in seconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trajcrafter_core import checkpoints as ck
from trajcrafter_core import fixtures as fx
from trajcrafter_core.errors import MissingFilesError, TrajCrafterError
from trajcrafter_core.pipeline import TrajectoryCrafterPipeline

from tiny_models import one_thread, tiny  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]


TINY_SEED = 5  # the seed of the tiny folders (fixture ``tiny``)


def _copy_base(tiny, tmp_path) -> Path:
    target = tmp_path / "base"
    shutil.copytree(tiny["base"], target)
    return target


def _params_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


# ------------------------------------------------------------------ components


def test_tokenizer_is_t5_with_t5_special_ids(tiny):
    tokenizer = ck.load_tokenizer(tiny["base"] / "tokenizer")
    ids = tokenizer(["a cat on the beach"], padding="max_length", max_length=226, truncation=True,
                    add_special_tokens=True, return_tensors="pt").input_ids
    assert ids.shape == (1, 226)
    assert tokenizer.pad_token_id == 0 and tokenizer.eos_token_id == 1 and tokenizer.unk_token_id == 2
    real = ids[0][ids[0] != 0]
    assert real[-1].item() == 1 and len(real) > 3  # words, then </s>, then padding
    assert int(ids.max()) < fx.tokenizer_vocab_size(tiny["base"] / "tokenizer")
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(str(tiny["base"] / "tokenizer"))
    assert torch.equal(auto(["a cat on the beach"], return_tensors="pt").input_ids, real[None])


def test_vae_and_text_encoder_round_trip_and_dtypes(tiny):
    vae = ck.load_vae(tiny["base"] / "vae", dtype="fp32")
    assert _params_equal(vae, fx.build_tiny_vae(seed=TINY_SEED + 10))
    assert vae.num_sample_frames_batch_size == 4 and vae.num_latent_frames_batch_size == 2
    assert not any(p.requires_grad for p in vae.parameters())
    vocab = fx.tokenizer_vocab_size(tiny["base"] / "tokenizer")
    encoder = ck.load_text_encoder(tiny["base"] / "text_encoder", dtype="fp32")
    assert _params_equal(encoder, fx.build_tiny_text_encoder(vocab, seed=TINY_SEED))
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16), (torch.float32, torch.float32)):
        assert ck.load_vae(tiny["base"] / "vae", dtype=name).dtype == dtype
    assert ck.load_text_encoder(tiny["base"] / "text_encoder", dtype="bf16").dtype == torch.bfloat16


def test_no_zero_initialised_weights_in_fixtures(tiny):
    vae = ck.load_vae(tiny["base"] / "vae", dtype="fp32")
    encoder = ck.load_text_encoder(tiny["base"] / "text_encoder", dtype="fp32")
    for model in (vae, encoder):
        zero = [n for n, p in model.named_parameters() if bool((p == 0).all())]
        assert zero == []


def test_transformer_in_root_in_crosstransformer_and_sharded(tiny, tmp_path):
    from trajcrafter_core.models.tiny import save_tiny_transformer

    root = ck.load_transformer(tiny["transformer"], dtype="fp32")
    nested = tmp_path / "nested"
    save_tiny_transformer(nested / "crosstransformer", seed=25, text_embed_dim=fx.TINY_TEXT_DIM)
    assert ck.resolve_transformer_dir(nested) == nested / "crosstransformer"
    sharded = tmp_path / "sharded"
    save_tiny_transformer(sharded, seed=25, sharded=True, text_embed_dim=fx.TINY_TEXT_DIM)
    assert len(list(sharded.glob("*.safetensors"))) > 1
    a = ck.load_transformer(nested, dtype="fp32")
    b = ck.load_transformer(sharded, dtype="bf16")
    assert _params_equal(a, root)  # same seed, same weights
    assert b.dtype == torch.bfloat16 and _params_equal(a.to(torch.bfloat16), b)


def test_schedulers_by_official_name(tiny):
    expected = {"DDIM_Origin": "DDIMScheduler", "DDIM_Cog": "CogVideoXDDIMScheduler",
                "Euler": "EulerDiscreteScheduler", "Euler A": "EulerAncestralDiscreteScheduler",
                "DPM++": "DPMSolverMultistepScheduler", "PNDM": "PNDMScheduler"}
    for name, cls in expected.items():
        scheduler = ck.load_scheduler(tiny["base"] / "scheduler", name)
        assert type(scheduler).__name__ == cls
        assert scheduler.config.prediction_type == "v_prediction"
        assert scheduler.config.timestep_spacing == "trailing"
        assert scheduler.config.beta_schedule == "scaled_linear"
    cog = ck.load_scheduler(tiny["base"] / "scheduler", "DDIM_Cog")
    assert cog.config.snr_shift_scale == 1.0 and cog.config.rescale_betas_zero_snr
    ddim = ck.load_scheduler(tiny["base"] / "scheduler", "DDIM_Origin")
    ddim.set_timesteps(50)
    assert ddim.timesteps[0].item() == 999 and ddim.timesteps[-1].item() == 19  # trailing spacing
    with pytest.raises(TrajCrafterError, match="DDIM_Origin"):
        ck.load_scheduler(tiny["base"] / "scheduler", "ddim")


def test_parse_dtype():
    assert ck.parse_dtype("bf16") == torch.bfloat16 and ck.parse_dtype("float16") == torch.float16
    with pytest.raises(TrajCrafterError, match="fp32, fp16, bf16"):
        ck.parse_dtype("int8")


def test_from_pretrained_options(tiny):
    pipe = TrajectoryCrafterPipeline.from_pretrained(tiny["base"], tiny["transformer"], dtype="fp32", device="cpu",
                            scheduler="Euler", vae_slicing=True, vae_tiling=True)
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    assert pipe.vae.use_slicing and pipe.vae.use_tiling
    assert pipe.scheduler_config["snr_shift_scale"] == 1.0
    pipe.set_scheduler("DDIM_Cog")
    assert pipe.scheduler.config.snr_shift_scale == 1.0  # the raw config, not DDIM's defaults


# ------------------------------------------------------------------ broken folders


def test_missing_base_files_are_listed_with_folder(tiny, tmp_path):
    base = _copy_base(tiny, tmp_path)
    (base / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    (base / "tokenizer" / "spiece.model").unlink()
    with pytest.raises(MissingFilesError) as info:
        TrajectoryCrafterPipeline.from_pretrained(base, tiny["transformer"], dtype="fp32", device="cpu")
    message = str(info.value)
    assert "vae/diffusion_pytorch_model*.safetensors" in message and "tokenizer/spiece.model" in message
    assert str(base) in message and "scheduler_config.json" in message  # what goes where
    assert "transformer/ folder is not needed" in message


def test_missing_transformer_folder_and_shard(tiny, tmp_path):
    with pytest.raises(MissingFilesError, match="crosstransformer"):
        ck.resolve_transformer_dir(tmp_path / "empty")
    from trajcrafter_core.models.tiny import save_tiny_transformer

    sharded = save_tiny_transformer(tmp_path / "sharded", seed=1, sharded=True, text_embed_dim=fx.TINY_TEXT_DIM)
    shard = sorted(sharded.glob("*-of-*.safetensors"))[0]
    shard.unlink()
    with pytest.raises(MissingFilesError, match=shard.name):
        ck.load_transformer(sharded, dtype="fp32")


def test_pickle_only_weights_are_refused(tiny, tmp_path):
    base = _copy_base(tiny, tmp_path)
    weights = base / "vae" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(MissingFilesError, match="pickle"):
        ck.load_vae(base / "vae")


def test_wrong_shape_names_the_key(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    base = _copy_base(tiny, tmp_path)
    path = base / "vae" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    key = "encoder.conv_in.conv.weight"
    state[key] = torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])
    save_file(state, str(path))
    with pytest.raises(TrajCrafterError, match=key.replace(".", r"\.")):
        ck.load_vae(base / "vae")
    config = json.loads((base / "text_encoder" / "config.json").read_text())
    config["d_model"] = 48
    (base / "text_encoder" / "config.json").write_text(json.dumps(config))
    with pytest.raises(TrajCrafterError, match="shared.weight|wrong shape"):
        ck.load_text_encoder(base / "text_encoder")


def test_corrupt_safetensors_and_json(tiny, tmp_path):
    base = _copy_base(tiny, tmp_path)
    (base / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TrajCrafterError, match="download it again"):
        ck.load_vae(base / "vae")
    (base / "scheduler" / "scheduler_config.json").write_text("{broken")
    with pytest.raises(TrajCrafterError, match="not valid JSON"):
        ck.load_scheduler(base / "scheduler")


# ------------------------------------------------------------------ Hub


def test_transformer_allow_patterns_pick_one_copy():
    both = ["config.json", "diffusion_pytorch_model-00001-of-00002.safetensors",
            "diffusion_pytorch_model-00002-of-00002.safetensors",
            "diffusion_pytorch_model.safetensors.index.json", "README.md",
            "crosstransformer/config.json", "crosstransformer/diffusion_pytorch_model.safetensors"]
    patterns = ck.transformer_allow_patterns(both)
    assert "config.json" in patterns and not any(p.startswith("crosstransformer/") for p in patterns)
    assert "README.md" not in patterns
    nested = ["README.md", "crosstransformer/config.json", "crosstransformer/diffusion_pytorch_model.safetensors"]
    assert ck.transformer_allow_patterns(nested) == nested[1:]
    assert not any("transformer/" in p and not p.startswith("text") for p in ck.BASE_ALLOW_PATTERNS)


def _check_instructions(text: str, base: Path, transformer: Path) -> None:
    assert f"{base}/vae/" in text and f"{base}/text_encoder/" in text and f"{base}/tokenizer/" in text
    assert "alibaba-pai/CogVideoX-Fun-V1.1-5b-InP" in text
    assert "TrajectoryCrafter/TrajectoryCrafter" in text and str(transformer) in text


def test_download_with_hf_hub_offline_fails_fast(tmp_path):
    """The real environment variable, in a fresh process (huggingface_hub reads it at import)."""
    script = (
        "import sys, time\n"
        "from trajcrafter_core import checkpoints as ck\n"
        "from trajcrafter_core.pipeline import TrajectoryCrafterPipeline\n"
        "from trajcrafter_core.errors import MissingFilesError\n"
        "for call in (lambda: TrajectoryCrafterPipeline.from_pretrained(sys.argv[1], sys.argv[2], download=True),\n"
        "             lambda: ck.download_transformer(sys.argv[2])):\n"
        "    start = time.time()\n"
        "    try:\n"
        "        call()\n"
        "    except MissingFilesError as exc:\n"
        "        print('SECONDS', time.time() - start)\n"
        "        print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "base"), str(tmp_path / "tr")],
                            capture_output=True, text=True, timeout=120, env=env)
    seconds = [float(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("SECONDS")]
    assert len(seconds) == 2, result.stderr[-2000:]
    assert max(seconds) < 10.0
    _check_instructions(result.stdout, tmp_path / "base", tmp_path / "tr")


def test_download_from_unreachable_endpoint_fails_fast(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    messages = []
    for call in (lambda: TrajectoryCrafterPipeline.from_pretrained(tmp_path / "base", tmp_path / "tr", download=True),
                 lambda: ck.download_transformer(tmp_path / "tr")):
        start = time.time()
        with pytest.raises(MissingFilesError) as info:
            call()
        assert time.time() - start < 10.0
        messages.append(str(info.value))
    _check_instructions("\n".join(messages), tmp_path / "base", tmp_path / "tr")
