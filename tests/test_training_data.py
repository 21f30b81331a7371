"""Training data plumbing: strict config, tar shards, resumable batch stream, posed sequences.

Expectations are independent of the code under test: hand-built matrices, known byte
patterns, and counting arguments about which sample lands in which batch.
"""

from __future__ import annotations

import json
import math
import tarfile

import numpy as np
import pytest
import torch

from trajcrafter_core.errors import MissingFilesError, TrajCrafterError
from training.config import config_from_dict, load_config
from training.data import ShardBatchStream, make_loader
from training.posed import (
    quaternion_to_matrix,
    read_colmap_depth_bin,
    read_colmap_sequence,
    read_posed_sequence,
    write_colmap_depth_bin,
    write_colmap_text_model,
    write_posed_sequence,
)
from training.shards import Sample, ShardWriter, iter_shard

BASE_CFG = {"model": {"transformer_dir": "x"}, "data": {"shards": ["x.tar"], "num_frames": 5, "height": 16, "width": 16}}


def _cfg(**sections):
    data = json.loads(json.dumps(BASE_CFG))
    for k, v in sections.items():
        if isinstance(v, dict):
            data.setdefault(k, {}).update(v)
        else:
            data[k] = v
    return data


# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------


def test_config_defaults_follow_the_stage():
    c1 = config_from_dict(_cfg(stage=1))
    c2 = config_from_dict(_cfg(stage=2, optim={"lr": 2e-6}))
    assert c1.trainable_prefixes == ["patch_embed.", "transformer_blocks."]
    assert c2.trainable_prefixes == ["perceiver_cross_attention.", "ref_patch_embed."]
    assert c1.data_kinds == ["double_reprojection", "triplet"] and c2.data_kinds == ["triplet"]
    assert not c1.uses_reference and c2.uses_reference
    assert c2.optim.lr == 2e-6


@pytest.mark.parametrize("patch,needle", [
    ({"optim": {"learning_rate": 1e-4}}, "optim.learning_rate': unknown key"),
    ({"optim": {"lr_": 1e-4}}, "Did you mean 'lr'"),
    ({"trian": {"max_steps": 3}}, "Did you mean 'train'"),
    ({"train": {"cfg_dropout": {"txt": 0.1}}}, "train.cfg_dropout.txt"),
])
def test_config_unknown_keys_are_errors(patch, needle):
    with pytest.raises(TrajCrafterError) as err:
        config_from_dict(_cfg(**patch))
    assert needle in str(err.value)


@pytest.mark.parametrize("patch,needle", [
    ({"data": {"num_frames": 8}}, r"4k\+1"),
    ({"data": {"height": 20}}, "multiple of 16"),
    ({"optim": {"lr": "fast"}}, "must be a number"),
    ({"train": {"max_steps": 2.5}}, "integer"),
    ({"train": {"gradient_checkpointing": "yes"}}, "true or false"),
    ({"train": {"cfg_dropout": {"text": 1.5}}}, "probability"),
    ({"stage": 2, "data": {"kinds": ["double_reprojection"]}}, "triplet"),
    ({"stage": 3}, "1 or 2"),
    ({"data": {"mix": {"triplets": 1}}}, "data.mix.triplets': is not a data kind"),
    ({"data": {"mix": {"triplet": -1}}}, ">= 0"),
    ({"data": {"mix": {"triplet": 0}}}, "at least one weight"),
    ({"stage": 2, "data": {"mix": {"triplet": 1}}}, "stage-1 setting"),
    ({"validation": {"every": 10}}, "held-out shards"),
    ({"output": {"report_to": ["comet"]}}, "report_to"),
])
def test_config_bad_values_are_errors(patch, needle):
    with pytest.raises(TrajCrafterError, match=needle):
        config_from_dict(_cfg(**patch))


def test_yaml_no_is_accepted_for_mixed_precision_and_wandb_needs_its_package(tmp_path, monkeypatch):
    """YAML 1.1 reads a bare `no` as false; the README's `mixed_precision: no` must still work."""
    import importlib.util

    (tmp_path / "c.yaml").write_text("model: {transformer_dir: x}\ndata: {shards: [x.tar]}\n"
                                     "train: {mixed_precision: no}\n")
    assert load_config(tmp_path / "c.yaml").train.mixed_precision == "no"
    assert load_config(tmp_path / "c.yaml", ["train.mixed_precision=no"]).train.mixed_precision == "no"
    assert load_config(tmp_path / "c.yaml", ["data.mix.triplet=1", "data.mix.double_reprojection=3"]).data.mix == {
        "triplet": 1.0, "double_reprojection": 3.0}
    with pytest.raises(TrajCrafterError, match="train.mixed_precision"):
        load_config(tmp_path / "c.yaml", ["train.mixed_precision=yes"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(TrajCrafterError, match="wandb, which is not installed: pip install wandb"):
        load_config(tmp_path / "c.yaml", ["output.report_to=[tensorboard, wandb]"])


def test_config_file_yaml_json_and_overrides(tmp_path):
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_cfg(optim={"lr": "1e-5"})))
    (tmp_path / "c.json").write_text(json.dumps(_cfg()))
    cfg = load_config(tmp_path / "c.yaml", ["optim.lr=3e-6", "train.max_steps=7"])
    assert cfg.optim.lr == pytest.approx(3e-6) and cfg.train.max_steps == 7
    assert load_config(tmp_path / "c.json").data.height == 16
    with pytest.raises(TrajCrafterError, match="unknown key"):
        load_config(tmp_path / "c.json", ["train.max_stpes=3"])
    with pytest.raises(TrajCrafterError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


# ---------------------------------------------------------------------------------------
# Shards
# ---------------------------------------------------------------------------------------


def _sample(i: int, kind: str = "triplet", t: int = 5, h: int = 16, w: int = 16) -> Sample:
    g = torch.Generator().manual_seed(i)
    video = {
        "target": torch.randint(0, 256, (t, h, w, 3), generator=g, dtype=torch.uint8),
        "render": torch.randint(0, 256, (t, h, w, 3), generator=g, dtype=torch.uint8),
        "mask": torch.randint(0, 2, (t, h, w), generator=g, dtype=torch.uint8),
    }
    if kind == "triplet":
        video["reference"] = torch.full((t, h, w, 3), i % 256, dtype=torch.uint8)
    return Sample(f"s{i:04d}", {"kind": kind, "prompt": f"prompt {i}"}, video)


def _write(path, ids, kind="triplet", codec="lossless"):
    with ShardWriter(path, video_codec=codec) as w:
        for i in ids:
            w.write(_sample(i, kind))
    return path


@pytest.mark.parametrize("codec, members", [
    ("lossless", ["s0000.json", "s0000.target.mkv", "s0000.render.mkv", "s0000.reference.mkv", "s0000.mask.bin"]),
    ("raw", ["s0000.json", "s0000.video.safetensors"])])
def test_shard_roundtrip_is_exact(tmp_path, codec, members):
    path = _write(tmp_path / "a.tar", [0, 1, 2], codec=codec)
    out = list(iter_shard(path))
    assert [s.key for s in out] == ["s0000", "s0001", "s0002"]
    for i, s in enumerate(out):
        ref = _sample(i)
        for name in ref.video:
            assert torch.equal(s.video[name], ref.video[name]), name
        assert s.prompt == f"prompt {i}" and s.meta["num_frames"] == 5 and s.meta["video_codec"] == codec
    # a plain tar that any tool can list
    with tarfile.open(path) as tar:
        assert tar.getnames()[:len(members)] == members


def _real_clip(media_dir, frames=17, height=192, width=336):
    """uint8 frames of a shared real clip, cropped and resized as the preparation scripts do."""
    from trajcrafter_core.video import read_video
    from training.builders import fit_clip, to_uint8

    clip = read_video(media_dir / "part-2-3.mp4", max_frames=frames, size_multiple=1)
    fitted, _, _, _ = fit_clip(clip.frames, torch.ones(clip.frames.shape[:3]), torch.eye(3), height, width)
    return to_uint8(fitted)


def test_h264_members_are_visually_lossless_and_masks_exact(tmp_path, media_dir):
    """The default codec on a real clip: >= 40 dB PSNR at a fraction of the raw bytes; the
    bit-packed mask is exact; the whole sample is far smaller than the raw layout."""
    target = _real_clip(media_dir)
    render = target.clone()
    mask = torch.zeros(target.shape[:3], dtype=torch.uint8)
    mask[:, :, 200:] = 1  # a hole band, rendered black as the renderers leave holes
    mask[:, 40:60, 30:90] = 1
    render[mask.bool()] = 0
    sample = Sample("real", {"kind": "double_reprojection", "prompt": "a clip"},
                    {"target": target, "render": render, "mask": mask})
    for codec in ("h264", "raw"):
        with ShardWriter(tmp_path / f"{codec}.tar", video_codec=codec) as w:
            w.write(sample)
    (back,) = list(iter_shard(tmp_path / "h264.tar"))
    assert torch.equal(back.video["mask"], mask)
    for name in ("target", "render"):
        err = back.video[name].float() - sample.video[name].float()
        psnr = 10 * math.log10(255**2 / float((err**2).mean()))
        assert psnr >= 40, (name, psnr)
    with tarfile.open(tmp_path / "h264.tar") as tar:
        sizes = {m.name.split(".", 1)[1]: m.size for m in tar}
    assert sizes["mask.bin"] * 50 < mask.numel()  # far under one byte per pixel
    raw = (tmp_path / "raw.tar").stat().st_size
    assert (tmp_path / "h264.tar").stat().st_size * 10 < raw


def test_latents_only_read_neither_reads_nor_checks_the_videos(tmp_path, monkeypatch):
    """Encoded shards carry no videos; in a shard with both, a latents-only read skips the video
    members (a corrupted one goes unnoticed) while a video read reports it."""
    from training import shards

    latents = {"target_mean": torch.randn(2, 4, 2, 2), "prompt_embeds": torch.randn(3, 8)}
    with ShardWriter(tmp_path / "both.tar") as w:
        w.write(Sample(_sample(0).key, _sample(0).meta, _sample(0).video, latents))
    with ShardWriter(tmp_path / "encoded.tar") as w:
        w.write(Sample("e0", {"kind": "triplet", "prompt": "p", "num_frames": 5, "height": 16, "width": 16},
                       None, latents))
    (ref,) = shards.index_shard(tmp_path / "encoded.tar")
    assert ref.has_latents and not ref.has_video
    (enc,) = list(iter_shard(tmp_path / "encoded.tar"))
    assert enc.video is None and enc.geometry == (5, 16, 16) and torch.equal(enc.latents["target_mean"],
                                                                              latents["target_mean"])
    data = bytearray((tmp_path / "both.tar").read_bytes())
    with tarfile.open(tmp_path / "both.tar") as tar:
        info = tar.getmember("s0000.target.mkv")
    data[info.offset_data + info.size // 2] ^= 0xFF
    (tmp_path / "both.tar").write_bytes(bytes(data))

    def no_decoding(*args, **kwargs):
        raise AssertionError("a latents-only read decoded a video")

    with monkeypatch.context() as m:
        m.setattr(shards, "decode_video", no_decoding)
        (s,) = list(iter_shard(tmp_path / "both.tar", with_video=False))
    assert s.video is None and torch.equal(s.latents["prompt_embeds"], latents["prompt_embeds"])
    with pytest.raises(TrajCrafterError, match="checksum mismatch in s0000.target.mkv"):
        list(iter_shard(tmp_path / "both.tar"))
    with pytest.raises(TrajCrafterError, match="without videos needs latents"):
        with ShardWriter(tmp_path / "bad.tar") as w:
            w.write(Sample("x", {"kind": "triplet"}, None, None))


def test_shard_writer_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path / "b.tar") as w:
            w.write(_sample(0))
            raise RuntimeError("job killed")
    assert list(tmp_path.iterdir()) == []


def test_shard_series_rolls_over_and_discards_only_the_open_part_on_error(tmp_path):
    from training.shards import ShardSeriesWriter

    with ShardSeriesWriter(tmp_path / "ok", max_count=2) as w:
        for i in range(3):
            w.write(_sample(i))
    assert [[s.key for s in iter_shard(p)] for p in w.paths] == [["s0000", "s0001"], ["s0002"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok-00000.tar", "ok-00001.tar"]
    with pytest.raises(RuntimeError):
        with ShardSeriesWriter(tmp_path / "bad", max_count=2) as w:
            for i in range(3):
                w.write(_sample(i))
            raise RuntimeError("job killed")
    # the full part was published; the open one (and its .partial file) is gone
    assert sorted(p.name for p in tmp_path.glob("bad*")) == ["bad-00000.tar"]


def test_corrupt_shard_is_a_clear_error(tmp_path):
    path = _write(tmp_path / "c.tar", [0, 1])
    data = bytearray(path.read_bytes())
    # flip one byte inside the first video member (after its tar header)
    with tarfile.open(path) as tar:
        info = tar.getmember("s0000.render.mkv")
    data[info.offset_data + info.size - 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(TrajCrafterError, match=r"c\.tar is corrupt.*checksum"):
        list(iter_shard(path))
    truncated = tmp_path / "t.tar"
    truncated.write_bytes(bytes(data[: info.offset_data + 100]))
    with pytest.raises(TrajCrafterError, match="corrupt or truncated"):
        list(iter_shard(truncated))
    garbage = tmp_path / "g.tar"
    garbage.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(TrajCrafterError, match="corrupt"):
        list(iter_shard(garbage))


def test_writer_rejects_inconsistent_samples(tmp_path):
    bad = _sample(0)
    bad.video["mask"] = bad.video["mask"][:, :8]
    with pytest.raises(TrajCrafterError, match="mask must be uint8"):
        with ShardWriter(tmp_path / "d.tar") as w:
            w.write(bad)
    missing = _sample(1)
    del missing.video["reference"]
    with pytest.raises(TrajCrafterError, match="reference"):
        with ShardWriter(tmp_path / "e.tar") as w:
            w.write(missing)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------
# Batch stream
# ---------------------------------------------------------------------------------------


def _keys(stream, n):
    it = iter(stream)
    return [tuple(next(it)["key"]) for _ in range(n)]


def test_stream_partitions_each_epoch_across_processes(tmp_path):
    _write(tmp_path / "x-0.tar", range(0, 7))
    _write(tmp_path / "x-1.tar", range(7, 13))
    _write(tmp_path / "x-2.tar", range(100, 104), kind="double_reprojection")
    pattern = [str(tmp_path / "x-*.tar")]
    kw = dict(kinds=["triplet"], batch_size=2, num_frames=5, height=16, width=16, seed=3)
    ranks = [ShardBatchStream(pattern, rank=r, world_size=2, **kw) for r in range(2)]
    per_epoch = ranks[0].batches_per_epoch
    assert per_epoch == 13 // 4  # 13 triplets, 2 per batch x 2 processes, tail dropped
    epoch0 = [k for r in ranks for b in _keys(r, per_epoch) for k in b]
    assert len(epoch0) == len(set(epoch0)) == 12  # disjoint, no double-reprojection sample
    assert all(int(k[1:]) < 13 for k in epoch0)
    # the next epoch is a different permutation
    nxt = _keys(ShardBatchStream(pattern, rank=0, world_size=2, start_batch=per_epoch, **kw), 1)
    assert nxt != _keys(ranks[0], 1)


def test_stream_resume_position_and_workers_reproduce_the_order(tmp_path):
    _write(tmp_path / "y-0.tar", range(0, 9))
    _write(tmp_path / "y-1.tar", range(9, 20))
    kw = dict(shards=[str(tmp_path / "y-*.tar")], kinds=["triplet"], batch_size=3, num_frames=5, height=16, width=16)
    full = _keys(ShardBatchStream(**kw), 10)  # crosses into the second epoch (6 per epoch)
    resumed = _keys(ShardBatchStream(start_batch=4, **kw), 6)
    assert resumed == full[4:]
    loader = make_loader(ShardBatchStream(start_batch=4, **kw), num_workers=2)
    it = iter(loader)
    with_workers = [tuple(next(it)["key"]) for _ in range(6)]
    del it
    assert with_workers == full[4:]
    batch = next(iter(ShardBatchStream(**kw)))
    assert batch["target"].shape == (3, 5, 16, 16, 3) and batch["mask"].shape == (3, 5, 16, 16)
    # a triplet's reference is its own tensor (constant = index), not the target
    assert all(int(batch["reference"][b].float().mean()) == int(k[1:]) for b, k in enumerate(batch["key"]))


def test_data_mix_holds_its_ratio_per_kind_epochs_and_resumes(tmp_path):
    """3:1 double reprojection : triplet, whatever the shards hold (3 vs 5 samples): every 4
    consecutive samples hold 3 and 1; each kind goes through all its samples before repeating
    one; resuming at a batch reproduces the stream; two processes get disjoint batches."""
    _write(tmp_path / "d.tar", range(100, 103), kind="double_reprojection")
    _write(tmp_path / "t.tar", range(0, 5))
    kw = dict(shards=[str(tmp_path / "*.tar")], kinds=["double_reprojection", "triplet"], batch_size=2,
              num_frames=5, height=16, width=16, seed=1, mix={"double_reprojection": 3, "triplet": 1})
    keys = [k for b in _keys(ShardBatchStream(**kw), 8) for k in b]
    kinds = ["t" if int(k[1:]) < 100 else "d" for k in keys]
    assert all(sorted(kinds[i:i + 4]) == ["d", "d", "d", "t"] for i in range(0, 16, 4))
    dr = [k for k, kind in zip(keys, kinds) if kind == "d"]
    tr = [k for k, kind in zip(keys, kinds) if kind == "t"]
    assert len(set(dr[:3])) == 3 and set(dr[3:6]) == set(dr[:3]) and len(set(tr)) == 4
    assert _keys(ShardBatchStream(start_batch=5, **kw), 3) == _keys(ShardBatchStream(**kw), 8)[5:]
    ranks = [[k for b in _keys(ShardBatchStream(rank=r, world_size=2, **kw), 4) for k in b] for r in range(2)]
    assert [k for pair in zip(ranks[0][::2], ranks[0][1::2], ranks[1][::2],
                                                               ranks[1][1::2]) for k in pair] == keys
    with pytest.raises(TrajCrafterError, match="hold no triplet sample"):
        ShardBatchStream(**dict(kw, shards=[str(tmp_path / "d.tar")]))


def test_stream_geometry_and_size_errors(tmp_path):
    _write(tmp_path / "z.tar", range(3))
    with pytest.raises(TrajCrafterError, match="config asks for"):
        next(iter(ShardBatchStream([str(tmp_path / "z.tar")], ["triplet"], 1, 9, 16, 16)))
    with pytest.raises(TrajCrafterError, match="lower data.batch_size"):
        ShardBatchStream([str(tmp_path / "z.tar")], ["triplet"], 4, 5, 16, 16)
    with pytest.raises(TrajCrafterError, match="matches no file"):
        ShardBatchStream([str(tmp_path / "nope-*.tar")], ["triplet"], 1, 5, 16, 16)


# ---------------------------------------------------------------------------------------
# Posed sequences and COLMAP
# ---------------------------------------------------------------------------------------


def _rot_y(deg):
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=torch.float64)


def _toy_sequence(n=3, h=12, w=20):
    frames = torch.rand(n, h, w, 3)
    depths = 1.0 + torch.rand(n, h, w)
    K = torch.tensor([[15.0, 0, 9.5], [0, 14.0, 5.5], [0, 0, 1]])
    c2w = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    for i in range(n):
        c2w[i, :3, :3] = _rot_y(10.0 * i)
        c2w[i, :3, 3] = torch.tensor([0.1 * i, -0.05 * i, 0.2 * i], dtype=torch.float64)
    return frames, depths, K, c2w


def test_quaternion_matches_hand_built_rotation():
    a = math.radians(30)
    # rotation of 30 degrees about y: q = (cos 15, 0, sin 15, 0)
    R = quaternion_to_matrix(math.cos(a / 2), 0.0, math.sin(a / 2), 0.0)
    assert torch.allclose(R, _rot_y(30), atol=1e-12)


def test_posed_sequence_roundtrip_and_resize(tmp_path):
    frames, depths, K, c2w = _toy_sequence()
    write_posed_sequence(tmp_path / "scene", frames, depths, K, c2w)
    seq = read_posed_sequence(tmp_path / "scene")
    clip = seq.load([0, 2], 12, 20)
    assert torch.allclose(clip.frames, frames[[0, 2]], atol=1 / 255 + 1e-6)
    assert torch.equal(clip.depths, depths[[0, 2]])
    assert torch.allclose(clip.cam_to_world.double(), c2w[[0, 2]], atol=1e-6)
    half = seq.load([1], 6, 10)
    # pixel centres stay put: (cx + 0.5) * 0.5 - 0.5
    assert half.intrinsics[0, 0, 2].item() == pytest.approx((9.5 + 0.5) * 0.5 - 0.5)
    assert half.intrinsics[0, 0, 0].item() == pytest.approx(7.5)


def test_posed_sequence_missing_depth_and_bad_camera(tmp_path):
    frames, depths, K, c2w = _toy_sequence()
    scene = write_posed_sequence(tmp_path / "scene", frames, depths, K, c2w)
    (scene / "depth" / "000001.npy").unlink()
    seq = read_posed_sequence(scene)
    seq.load([0], 12, 20)
    with pytest.raises(MissingFilesError, match="depth map for frame 000001 is missing"):
        seq.load([1], 12, 20)
    doc = json.loads((scene / "cameras.json").read_text())
    doc["frames"][0]["c2w"][0][0] = 5.0
    (scene / "cameras.json").write_text(json.dumps(doc))
    with pytest.raises(TrajCrafterError, match="rigid"):
        read_posed_sequence(scene)
    doc["frames"][0]["extra"] = 1
    (scene / "cameras.json").write_text(json.dumps(doc))
    with pytest.raises(TrajCrafterError, match="exactly the keys"):
        read_posed_sequence(scene)


def test_colmap_text_model_matches_the_posed_format(tmp_path):
    from PIL import Image

    frames, depths, K, c2w = _toy_sequence()
    names = [f"frame_{i:03d}.png" for i in range(3)]
    (tmp_path / "images").mkdir()
    (tmp_path / "depth").mkdir()
    for i, nm in enumerate(names):
        Image.fromarray((frames[i] * 255).round().byte().numpy()).save(tmp_path / "images" / nm)
        write_colmap_depth_bin(tmp_path / "depth" / f"{nm}.geometric.bin", depths[i].numpy())
    write_colmap_text_model(tmp_path / "sparse", K.expand(3, 3, 3), c2w, names, 12, 20)
    text = (tmp_path / "sparse" / "cameras.txt").read_text()
    # COLMAP's principal point is ours + 0.5 (pixel centre convention)
    assert "PINHOLE 20 12 15.0 14.0 10.0 6.0" in text
    seq = read_colmap_sequence(tmp_path / "sparse", tmp_path / "images", tmp_path / "depth")
    clip = seq.load([0, 1, 2], 12, 20)
    assert torch.allclose(clip.intrinsics[0], K, atol=1e-6)
    assert torch.allclose(clip.cam_to_world.double(), c2w, atol=1e-6)
    assert torch.equal(clip.depths, depths)
    # COLMAP's layout: header "W&H&C&", then the [W, H] transpose column-major (x fastest)
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)  # H=2, W=3
    raw = tmp_path / "d.bin"
    raw.write_bytes(b"3&2&1&" + np.array([0, 1, 2, 3, 4, 5], dtype=np.float32).tobytes())
    assert np.array_equal(read_colmap_depth_bin(raw), arr)
    (tmp_path / "depth" / f"{names[1]}.geometric.bin").unlink()
    with pytest.raises(MissingFilesError, match="frame_001"):
        seq.load([1], 12, 20)


def test_colmap_rejects_distortion(tmp_path):
    (tmp_path / "cameras.txt").write_text("1 OPENCV 20 12 15 14 10 6 0.1 0 0 0\n")
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n")
    with pytest.raises(TrajCrafterError, match="image_undistorter"):
        read_colmap_sequence(tmp_path, tmp_path, tmp_path)
    (tmp_path / "cameras.txt").write_text("1 OPENCV 20 12 15 14 10 6 0 0 0 0\n")
    assert len(read_colmap_sequence(tmp_path, tmp_path, tmp_path)) == 1


# ---------------------------------------------------------------------------------------
# Preparation jobs (manifest inputs, sharding, bad inputs)
# ---------------------------------------------------------------------------------------


def _video_with_depth(tmp_path, frames=9, h=32, w=48):
    from trajcrafter_core.synthetic import example_clip
    from trajcrafter_core.video import write_video

    clip = example_clip(num_frames=frames, height=h, width=w)
    write_video(tmp_path / "clip.mp4", clip["frames"], fps=8, crf=10)
    np.save(tmp_path / "clip_depth.npy", clip["depths"].numpy())
    return clip


def test_double_reprojection_job_from_a_manifest(tmp_path):
    from training import prepare_double_reprojection

    _video_with_depth(tmp_path)
    (tmp_path / "videos.jsonl").write_text(
        json.dumps({"video": "clip.mp4", "depth": "clip_depth.npy", "prompt": "a room"}) + "\n")
    assert prepare_double_reprojection.main(["--manifest", str(tmp_path / "videos.jsonl"), "--out-dir",
                                             str(tmp_path / "out"), "--num-frames", "5", "--height", "32",
                                             "--width", "32", "--stride", "2", "--render-long-side", "64"]) == 0
    (sample,) = list(iter_shard(next((tmp_path / "out").glob("*.tar"))))
    assert sample.kind == "double_reprojection" and sample.prompt == "a room"
    assert sample.video["target"].shape == (5, 32, 32, 3) and "reference" not in sample.video
    report = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert report["samples"] == 1 and report["skipped"] == []


def test_training_pairs_are_rendered_at_the_read_size_and_resized_like_inference():
    """32x48 training clips render at 64x96 (--render-long-side 96) and are resized to 32x48 the
    way inference resizes its conditions (expectation rebuilt from the recorded move)."""
    from trajcrafter_core.redirect import resize_mask, resize_video
    from trajcrafter_core.reprojection import double_reprojection
    from training.builders import DoubleReprojectionOptions, double_reprojection_samples
    from training.prepare_double_reprojection import synthetic_items

    opts = DoubleReprojectionOptions(num_frames=5, height=32, width=48, render_long_side=96, clean_holes=True)
    assert opts.render_size == (64, 96) and DoubleReprojectionOptions().render_size == (576, 1024)
    (item,) = synthetic_items(1, 5, *opts.render_size)
    (sample,) = double_reprojection_samples(item, 0, opts)
    assert sample.meta["render_size"] == [64, 96] and sample.video["target"].shape == (5, 32, 48, 3)
    move = sample.meta["move"]
    from trajcrafter_core.camera import target_pose_trajectory

    transforms = target_pose_trajectory(move["theta"], move["phi"], move["r"], move["x"], move["y"], 5, move["radius"])
    full = double_reprojection(item.frames, item.depths, torch.tensor(item.intrinsics), transforms, clean_holes=True)
    expected_mask = resize_mask(full.hole_mask, (32, 48))
    assert torch.equal(sample.video["mask"].float(), expected_mask)
    expected = (resize_video(full.render, (32, 48)).clamp(0, 1) * 255).round()
    assert (sample.video["render"].float() - expected).abs().max() <= 1
    target = (resize_video(item.frames, (32, 48)) * 255).round()
    assert (sample.video["target"].float() - target).abs().max() <= 1


def test_short_video_and_missing_depth_are_clear_errors_without_leftovers(tmp_path, capsys):
    from training import prepare_double_reprojection

    _video_with_depth(tmp_path)
    manifest = tmp_path / "videos.jsonl"
    manifest.write_text(json.dumps({"video": "clip.mp4", "depth": "clip_depth.npy"}) + "\n")
    args = ["--manifest", str(manifest), "--out-dir", str(tmp_path / "out"), "--height", "32", "--width", "32",
            "--render-long-side", "64"]
    assert prepare_double_reprojection.main(args + ["--num-frames", "13"]) == 2
    err = capsys.readouterr().err
    assert "clip.mp4" in err and "9 frames but the clip needs 13" in err
    assert not list((tmp_path / "out").glob("*.tar*"))
    manifest.write_text(json.dumps({"video": "clip.mp4", "depth": "nope.npy"}) + "\n")
    assert prepare_double_reprojection.main(args + ["--num-frames", "5"]) == 2
    assert "depth file" in capsys.readouterr().err and not list((tmp_path / "out").glob("*.tar*"))
    manifest.write_text(json.dumps({"video": "clip.mp4"}) + "\n")
    assert prepare_double_reprojection.main(args + ["--num-frames", "5"]) == 2
    assert "has no 'depth' file" in capsys.readouterr().err
    # --on-error skip: the bad video is reported, the good one is written
    manifest.write_text(json.dumps({"video": "clip.mp4", "depth": "nope.npy"}) + "\n"
                        + json.dumps({"video": "clip.mp4", "depth": "clip_depth.npy", "id": "good"}) + "\n")
    assert prepare_double_reprojection.main(args + ["--num-frames", "5", "--on-error", "skip"]) == 0
    report = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert report["samples"] == 1 and len(report["skipped"]) == 1 and "nope.npy" in report["skipped"][0]["error"]


def test_decoded_frame_counts_are_trusted_and_an_item_is_whole_or_absent(tmp_path, media_dir, capsys):
    """0-NNvgaTcVzAG0-r.mp4's container promises 146 frames; 145 decode. Clip starts are spread
    over the decoded frames (the last 49-frame clip starts at 96, not 97), and an item that fails
    on its second clip leaves none of its clips in the shards when it is skipped."""
    from trajcrafter_core.video import probe_video
    from training import prepare_double_reprojection
    from training.builders import decoded_frame_count

    video = media_dir / "0-NNvgaTcVzAG0-r.mp4"
    assert probe_video(video).frame_count == 146 and decoded_frame_count(video) == 145
    np.save(tmp_path / "d145.npy", np.full((145, 9, 16), 2.0, dtype=np.float32))
    np.save(tmp_path / "d120.npy", np.full((120, 9, 16), 2.0, dtype=np.float32))
    manifest = tmp_path / "videos.jsonl"
    args = ["--manifest", str(manifest), "--num-frames", "49", "--clips-per-video", "2", "--height", "32",
            "--width", "48", "--render-long-side", "0"]
    manifest.write_text(json.dumps({"video": str(video), "depth": "d145.npy", "id": "whole"}) + "\n")
    assert prepare_double_reprojection.main(args + ["--out-dir", str(tmp_path / "a")]) == 0
    samples = [s for p in sorted((tmp_path / "a").glob("*.tar")) for s in iter_shard(p)]
    assert [(s.key, s.meta["start"]) for s in samples] == [("dr_whole_0", 0), ("dr_whole_1", 96)]
    # the depth covers only 120 frames: the first clip works, the second cannot
    manifest.write_text(json.dumps({"video": str(video), "depth": "d120.npy", "id": "short"}) + "\n"
                        + json.dumps({"video": str(video), "depth": "d145.npy", "id": "whole"}) + "\n")
    assert prepare_double_reprojection.main(args + ["--out-dir", str(tmp_path / "b"), "--on-error", "skip"]) == 0
    assert "skipped" in capsys.readouterr().err
    report = json.loads(next((tmp_path / "b").glob("*.json")).read_text())
    assert report["samples"] == 2 and [s["item"] for s in report["skipped"]] == [str(video)]
    assert "depth" in report["skipped"][0]["error"] and "120 frames" in report["skipped"][0]["error"]
    keys = [s.key for p in sorted((tmp_path / "b").glob("*.tar")) for s in iter_shard(p, with_video=False)]
    assert keys == ["dr_whole_0", "dr_whole_1"]


@pytest.mark.parametrize("script, line", [("prepare_double_reprojection", {"video": "a.mp4", "depth": "a.npy"}),
                                           ("prepare_triplets", {"path": "scene"})])
def test_manifest_that_is_missing_or_not_json_names_the_file_and_line(tmp_path, capsys, script, line):
    import importlib

    main = importlib.import_module(f"training.{script}").main
    manifest = tmp_path / "list.jsonl"
    args = ["--manifest", str(manifest), "--out-dir", str(tmp_path / "out"), "--num-frames", "5",
            "--height", "32", "--width", "32"]
    assert main(args) == 2
    assert f"manifest {manifest} does not exist" in capsys.readouterr().err
    manifest.write_text(json.dumps(line) + "\n\n{not json\n")
    assert main(args) == 2
    assert f"{manifest}:3 is not JSON" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.tar*"))


def test_triplets_from_a_colmap_scene_and_job_split(tmp_path):
    from PIL import Image

    from trajcrafter_core.camera import official_intrinsics
    from trajcrafter_core.synthetic import SyntheticScene
    from training import prepare_triplets

    n, h, w = 14, 32, 48
    K = official_intrinsics(w, h)
    c2w = torch.eye(4).repeat(n, 1, 1)
    c2w[:, 0, 3] = torch.linspace(-0.6, 0.6, n)
    frames, depths = SyntheticScene(seed=1).render(torch.linalg.inv(c2w), K, h, w)
    scene = tmp_path / "scene"
    (scene / "images").mkdir(parents=True)
    (scene / "stereo" / "depth_maps").mkdir(parents=True)
    names = [f"{i:04d}.png" for i in range(n)]
    for i, nm in enumerate(names):
        Image.fromarray((frames[i] * 255).round().byte().numpy()).save(scene / "images" / nm)
        d = depths[i].numpy().copy()
        d[:4, :4] = 0.0  # COLMAP leaves pixels without depth
        write_colmap_depth_bin(scene / "stereo" / "depth_maps" / f"{nm}.geometric.bin", d)
    write_colmap_text_model(scene / "sparse" / "0", K.expand(n, 3, 3), c2w, names, h, w)
    (tmp_path / "seq.jsonl").write_text(json.dumps({"path": "scene", "prompt": "a room"}) + "\n"
                                        + json.dumps({"path": "scene", "prompt": "again", "id": "copy"}) + "\n")
    for job in range(2):
        assert prepare_triplets.main(["--manifest", str(tmp_path / "seq.jsonl"), "--out-dir", str(tmp_path / "out"),
                                      "--num-frames", "5", "--height", "32", "--width", "48", "--min-offset", "2",
                                      "--max-offset", "6", "--min-coverage", "0.2", "--shard", str(job),
                                      "--num-shards", "2", "--render-long-side", "0", "--video-codec", "lossless"]) == 0
    shards = sorted((tmp_path / "out").glob("*.tar"))
    assert [p.name for p in shards] == ["mv-00000-of-00002-00000.tar", "mv-00001-of-00002-00000.tar"]
    samples = [s for p in shards for s in iter_shard(p)]
    assert sorted(s.prompt for s in samples) == ["a room", "again"]
    for s in samples:
        a, b = s.meta["source_start"], s.meta["target_start"]
        assert 2 <= abs(a - b) <= 6
        # the target is the sequence's own frames, the reference the source clip's
        assert torch.allclose(s.video["target"].float() / 255, frames[b:b + 5], atol=1 / 255 + 1e-6)
        assert torch.allclose(s.video["reference"].float() / 255, frames[a:a + 5], atol=1 / 255 + 1e-6)
        assert 0.2 <= 1 - s.video["mask"].float().mean() <= 0.98


def test_shipped_configs_are_valid():
    from pathlib import Path

    from accelerate.commands.config.config_args import load_config_from_file

    root = Path(__file__).resolve().parents[1] / "training" / "configs"
    stages = {p.stem: load_config(p) for p in root.glob("*.yaml")}
    assert stages["stage1"].stage == 1 and stages["stage1"].optim.lr == pytest.approx(1e-5)
    assert stages["stage2"].stage == 2 and stages["stage2"].optim.lr == pytest.approx(2e-6)
    assert stages["stage2"].data_kinds == ["triplet"]
    launchers = sorted((root / "accelerate").glob("*.yaml"))
    assert len(launchers) >= 5
    for path in launchers:
        load_config_from_file(str(path))
    with pytest.raises(TrajCrafterError, match="lr_scheduler"):
        config_from_dict(_cfg(optim={"lr_scheduler": "cosine_annealing"}))
