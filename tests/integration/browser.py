"""Drive the ComfyUI frontend a server serves, in headless Chromium (Playwright, system browser).

Never runs ``playwright install``: the browser is the system Chromium (``CHROMIUM`` or
``chromium`` on PATH). What a test or tool does with a page:

- :meth:`Frontend.load` — ``app.loadGraphData(workflow)``, then report missing node types and
  the text of any "missing nodes" dialog;
- :meth:`Frontend.to_prompt` — ``app.graphToPrompt()``'s API prompt;
- :meth:`Frontend.build` — create nodes / set widgets / connect in the live graph from a spec and
  return ``app.graph.serialize()`` (how ``workflows/*.json`` are made);
- :meth:`Frontend.fit` and :meth:`Frontend.screenshot`.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise FileNotFoundError("no Chromium found: apt-get install chromium, or set CHROMIUM")
    return path


def _apply_settings(url: str) -> None:
    """Store :data:`EDITOR_SETTINGS` as the server-side user settings the page reads on load."""
    import json
    import urllib.request

    for key, value in EDITOR_SETTINGS.items():
        req = urllib.request.Request(f"{url}/settings/{key}", data=json.dumps(value).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=10).read()


@contextmanager
def frontend(url: str, width: int = 1600, height: int = 1000):
    """A :class:`Frontend` on ``url`` in a fresh headless browser."""
    from playwright.sync_api import sync_playwright

    _apply_settings(url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url, wait_until="networkidle", timeout=120_000)
            page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=120_000)
            yield Frontend(page, errors)
        finally:
            browser.close()


_BUILD_JS = """
async (spec) => {
  const app = window.app, graph = app.graph;
  graph.clear();
  const byKey = {};
  for (const n of spec.nodes) {
    const node = LiteGraph.createNode(n.type);
    if (!node) throw new Error('unknown node type ' + n.type);
    graph.add(node);
    node.pos = n.pos;
    if (n.title) node.title = n.title;
    for (const [name, value] of Object.entries(n.widgets || {})) {
      const w = (node.widgets || []).find(w => w.name === name);
      if (!w) throw new Error(n.type + ' has no widget ' + name);
      w.value = value;
      if (w.callback) { try { w.callback(value); } catch (e) {} }
    }
    const min = node.computeSize();
    node.setSize(n.size || [Math.max(min[0], n.width || 320), min[1]]);
    byKey[n.key] = node;
  }
  for (const [src, out, dst, inp] of spec.links) {
    const s = byKey[src], d = byKey[dst];
    const o = s.outputs.findIndex(x => x.name === out);
    const i = d.inputs.findIndex(x => x.name === inp);
    if (o < 0 || i < 0) throw new Error('bad link ' + [src, out, dst, inp].join(' '));
    if (!s.connect(o, d, i)) throw new Error('link refused ' + [src, out, dst, inp].join(' '));
  }
  for (const g of spec.groups || []) {
    const group = new LiteGraph.LGraphGroup(g.title);
    group.pos = g.pos; group.size = g.size;
    graph.add(group);
  }
  graph.setDirtyCanvas(true, true);
  return graph.serialize();
}
"""

_FIT_JS = """
([margin, left, top]) => {
  const app = window.app, canvas = app.canvas, nodes = app.graph.nodes;
  if (!nodes.length) return;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const n of nodes) {
    const title = LiteGraph.NODE_TITLE_HEIGHT || 30;
    x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - title);
    x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
  }
  const el = canvas.canvas, W = el.clientWidth - left, H = el.clientHeight - top;
  const scale = Math.min((W - 2 * margin) / (x1 - x0), (H - 2 * margin) / (y1 - y0), 1.2);
  canvas.ds.scale = scale;
  canvas.ds.offset = [left / scale + (W / scale - (x1 - x0)) / 2 - x0, top / scale + (H / scale - (y1 - y0)) / 2 - y0];
  canvas.setDirty(true, true);
  const r = el.getBoundingClientRect();
  const [ox, oy] = canvas.ds.offset;
  const x = Math.max(r.left, r.left + (x0 + ox) * scale - margin), y = Math.max(r.top, r.top + (y0 + oy) * scale - margin);
  return {x, y, width: Math.min((x1 - x0) * scale + 2 * margin, r.right - x), height: Math.min((y1 - y0) * scale + 2 * margin, r.bottom - y)};
}
"""

# Editor settings for clean, readable pictures: no templates browser on first load, no minimap,
# full-detail drawing even when zoomed out.
EDITOR_SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Minimap.Visible": False,
    "LiteGraph.Canvas.LowQualityRenderingZoomThreshold": 0.1,
}


class Frontend:
    """One page of the ComfyUI frontend."""

    def __init__(self, page, errors):
        self.page = page
        self.page_errors = errors

    def load(self, workflow: dict) -> dict:
        """Load a UI workflow; returns what the editor complained about.

        ``{"unregistered": node types without a definition, "dialogs": texts of "missing ..."
        dialogs, "alerts": texts of warning/error toasts (e.g. schema validation), "nodes": n}``.
        """
        self.clear_toasts()
        self.page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
        self.page.wait_for_timeout(800)
        return self.page.evaluate(
            """() => ({
                unregistered: window.app.graph.nodes.filter(n => !LiteGraph.registered_node_types[n.type]).map(n => n.type),
                dialogs: Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText)
                           .filter(t => /missing/i.test(t)),
                alerts: Array.from(document.querySelectorAll('.p-toast-message-warn, .p-toast-message-error'))
                           .map(t => t.innerText),
                nodes: window.app.graph.nodes.length,
            })"""
        )

    def clear_toasts(self) -> None:
        self.page.evaluate("() => document.querySelectorAll('.p-toast-message').forEach(t => t.remove())")

    def close_dialogs(self) -> None:
        """Close open dialogs (missing nodes, templates browser) and toasts."""
        for _ in range(3):
            if not self.page.evaluate("() => document.querySelectorAll('.p-dialog').length"):
                break
            self.page.keyboard.press("Escape")
            self.page.wait_for_timeout(200)
        self.clear_toasts()

    def to_prompt(self) -> dict:
        """``(await app.graphToPrompt()).output``: the API prompt the Run button would send."""
        return self.page.evaluate("async () => (await window.app.graphToPrompt()).output")

    def serialize(self) -> dict:
        """``app.graph.serialize()`` with empty (null) slot fields dropped, as saved files have them."""
        workflow = self.page.evaluate("() => window.app.graph.serialize()")
        # null top-level fields (floatingLinks, definitions, extra.reroutes) fail the frontend's
        # own schema check when the file is opened again: leave them out
        workflow = {k: v for k, v in workflow.items() if v is not None}
        workflow["extra"] = {k: v for k, v in (workflow.get("extra") or {}).items() if v is not None}
        for node in workflow.get("nodes", []):
            for key in ("inputs", "outputs"):
                node[key] = [{k: v for k, v in slot.items() if v is not None} for slot in node.get(key, [])]
            for k in [k for k, v in node.items() if v is None]:
                del node[k]
        return workflow

    def build(self, spec: dict) -> dict:
        """Create the graph of ``spec`` (see ``workflow_specs``) in the page and serialise it."""
        return self.page.evaluate(_BUILD_JS, spec)

    def fit(self, margin: int = 30, left: int = 0, top: int = 0) -> dict:
        """Zoom/pan so every node is visible in the canvas right of ``left`` and below ``top``
        pixels (the editor's side bar and menus); returns the graph's box on the page."""
        box = self.page.evaluate(_FIT_JS, [margin, left, top])
        self.page.wait_for_timeout(300)
        return box

    def fit_in_editor(self, margin: int = 24) -> dict:
        """:meth:`fit` inside the editor's visible canvas (right of the side bar, below the menus)."""
        left, top = self.page.evaluate(
            """() => {
                const bar = document.querySelector('.side-tool-bar-container');
                const menus = Array.from(document.querySelectorAll('.workflow-tabs-container, .comfyui-body-top, .actionbar'));
                const top = Math.max(0, ...menus.map(e => e.getBoundingClientRect().bottom));
                return [bar ? bar.getBoundingClientRect().right : 0, top];
            }"""
        )
        return self.fit(margin=margin, left=left, top=top + 40)

    def hide_chrome(self) -> None:
        """Hide the side bar, menus and minimap (for thumbnails of the graph alone)."""
        self.page.add_style_tag(
            content=".side-tool-bar-container, .comfyui-menu, .comfy-menu, .graph-canvas-menu, "
            ".minimap-main-container, .workflow-tabs-container, .actionbar, .comfyui-body-top, "
            ".comfyui-body-left, .litegraph-minimap, .p-toast, .selection-toolbox, .graph-canvas-panel "
            "{ display: none !important; }"
        )
        self.page.evaluate(
            "() => { const c = window.app.canvas; c.render_info = false; c.show_info = false;"
            " document.querySelectorAll('.workflow-tabs, .topbar, [class*=breadcrumb]').forEach(e => e.style.display = 'none');"
            " window.dispatchEvent(new Event('resize')); }"
        )
        self.page.wait_for_timeout(300)

    def screenshot(self, path: str, **kwargs) -> None:
        self.page.screenshot(path=str(path), **kwargs)

    def keep(self, name: str) -> None:
        """With ``TRAJCRAFTER_UPDATE_SCREENSHOTS=1``, also write the page as
        ``workflows/screenshots/<name>.jpg`` (the README's pictures)."""
        if os.environ.get("TRAJCRAFTER_UPDATE_SCREENSHOTS"):
            from pathlib import Path

            target = Path(__file__).resolve().parents[2] / "workflows" / "screenshots"
            target.mkdir(exist_ok=True)
            self.screenshot(target / f"{name}.jpg", type="jpeg", quality=90)
