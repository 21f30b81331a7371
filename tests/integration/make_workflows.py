"""Write ``workflows/<name>.json`` (+ same-name ``.jpg`` thumbnail) from ``workflow_specs``.

The graphs are built by the real ComfyUI frontend (create node, set widgets, connect) and saved
with ``app.graph.serialize()``, so the files are exactly what the editor saves and loads.

    COMFYUI_DIR=/path/to/ComfyUI $COMFYUI_DIR/venv/bin/python tests/integration/make_workflows.py [name ...]

Starts its own ComfyUI (temporary base folder) unless ``--url`` names a running one that has
this pack loaded. Needs Playwright and a system Chromium (see tests/integration/README.md).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests")]

from browser import frontend  # noqa: E402
from comfy_server import ComfyServer, free_port, make_base  # noqa: E402
from workflow_specs import WORKFLOWS  # noqa: E402

THUMB_WIDTH = 768


def write_thumbnail(png: bytes, path: Path) -> None:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    h = round(img.height * THUMB_WIDTH / img.width)
    img.resize((THUMB_WIDTH, h), Image.LANCZOS).save(path, quality=88)


def make(url: str, names, out_dir: Path) -> None:
    with frontend(url, width=1800, height=900) as fe:
        fe.hide_chrome()
        for name in names:
            workflow = fe.build(WORKFLOWS[name]())
            box = fe.fit(margin=24)
            workflow = fe.serialize()
            workflow.pop("id", None)
            (out_dir / f"{name}.json").write_text(json.dumps(workflow, indent=2) + "\n")
            write_thumbnail(fe.page.screenshot(clip=box), out_dir / f"{name}.jpg")
            print(f"wrote {name}.json / .jpg ({len(workflow['nodes'])} nodes, {len(workflow['links'])} links)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"workflows to write (default all: {', '.join(WORKFLOWS)})")
    parser.add_argument("--url", help="a running ComfyUI with this pack (default: start one)")
    parser.add_argument("--out", default=str(REPO / "workflows"))
    args = parser.parse_args()
    names = args.names or list(WORKFLOWS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.url:
        make(args.url, names, out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        server = ComfyServer(make_base(Path(tmp)), free_port(), Path(tmp) / "comfyui.log").start()
        try:
            make(server.url, names, out)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
