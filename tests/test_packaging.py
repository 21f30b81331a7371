"""Packaging facts ComfyUI Manager and the Comfy Registry rely on."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_registry_fields_are_valid():
    data = _pyproject()
    project, comfy = data["project"], data["tool"]["comfy"]
    name = project["name"]
    # Registry rules: < 100 chars, alphanumerics with single - _ . between them, no leading digit,
    # and "ComfyUI" does not belong in the name.
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name)
    assert "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["urls"]["Repository"].startswith("https://")
    assert (REPO / project["license"]["file"]).is_file()
    for key in ("PublisherId", "DisplayName", "Icon"):
        assert comfy[key], key


def test_requirements_never_touch_torch_or_compiled_extensions():
    lines = [ln.strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln and not ln.startswith("#")]
    names = {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}
    assert not names & {"torch", "torchvision", "torchaudio", "decord", "pytorch3d", "xformers", "opencv-python"}
    # Every line is a plain requirement (ComfyUI Manager installs them one by one).
    assert all("#" not in r for r in reqs)
    # requirements.txt and pyproject's dependencies name the same packages.
    deps = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in _pyproject()["project"]["dependencies"]}
    assert names == deps
