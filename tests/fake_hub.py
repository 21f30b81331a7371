"""A stand-in for the Hugging Face Hub: repositories are local folders.

``FakeHub(monkeypatch, {"owner/name": folder, ...})`` replaces the two Hub primitives of
:mod:`trajcrafter_core.hub` (the file listing and the one-file download), so every download
path of the pack runs for real against it: the policy (listing, selection, staging, the final
move) is ours, only the transport is faked. ``fail_after`` makes the n-th file download raise
(a broken connection); ``calls`` records ``(repo_id, file)`` per download.
"""

from __future__ import annotations

import shutil
from pathlib import Path


class FakeHub:
    def __init__(self, monkeypatch, repos: dict, fail_after=None):
        from trajcrafter_core import hub

        self.repos = {k: Path(v) for k, v in repos.items()}
        self.fail_after = fail_after
        self.calls = []
        monkeypatch.setattr(hub, "list_repo_files", self.list_repo_files)
        monkeypatch.setattr(hub, "fetch_file", self.fetch_file)

    def list_repo_files(self, repo_id, timeout=10.0):
        if repo_id not in self.repos:
            raise OSError(f"404: no repository {repo_id}")
        root = self.repos[repo_id]
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def fetch_file(self, repo_id, name, folder, timeout, tqdm_class=None):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise ConnectionError("connection reset by peer")
        self.calls.append((repo_id, name))
        dest = Path(folder) / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        # what hf_hub_download leaves beside the files
        (Path(folder) / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
        (Path(folder) / ".cache" / "huggingface" / f"{Path(name).name}.lock").write_text("")
        shutil.copy(self.repos[repo_id] / name, dest)
