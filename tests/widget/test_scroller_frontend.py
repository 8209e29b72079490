"""The scroller's ES module alone in a real browser (Debian's chromium), with a stand-in model.

The page and the overview bar are traits: a view made after the page came (the first view,
made while the module loads; a reload) draws it from the model, asking nothing; a page that
answers an older request than the model's newest is not drawn; a resize that leaves the width
as drawn does not redraw; one that changes it does. The page is a real first page from a real
Scroller (its state and its reply, as sent).
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SOURCE = files("mef3lab.widget").joinpath("scroller.js").read_text()

#: Loads the module, makes one model (a Backbone-like stand-in) and runs `script` on it.
HARNESS = """async ({src, state, reply, data, script}) => {
  const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  const mod = (await import(url)).default;
  const made = (attrs) => {
    const handlers = {}, sent = [];
    return {
      attrs, sent,
      get: (k) => attrs[k],
      set: (k, v) => { attrs[k] = v; (handlers[`change:${k}`] || []).forEach((f) => f()); },
      save_changes: () => {},
      send: (m) => sent.push(m),
      on: (ev, f) => { (handlers[ev] ||= []).push(f); },
      off: (ev, f) => { handlers[ev] = (handlers[ev] || []).filter((g) => g !== f); },
    };
  };
  const view = (model, width) => {
    const el = document.createElement("div");
    el.style.width = `${width}px`;
    document.body.append(el);
    mod.render({ model, el });
    return el.querySelector(".m3s");
  };
  // the reply trait as a front end holds it: its buffer as a DataView
  const page = (id) => ({ ...reply, id, data: new DataView(new Float32Array(data).buffer) });
  const settle = (ms) => new Promise((r) => setTimeout(r, ms));
  return await (eval(script))({ mod, made, view, state, reply, page, settle });
}"""


@pytest.fixture(scope="module")
def browser_page():
    from benchmarks.browser import CHROMIUM, CHROMIUM_ARGS, ensure_chromium

    why = ensure_chromium()
    if why:
        pytest.skip(f"no browser: {why}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 800})
        finally:
            browser.close()


@pytest.fixture
def first_page(scroll, recording):
    """A real scroller's state (without its page and bar) and its first reply (content,
    float32 values)."""
    w, replies = scroll(recording, rows=4)
    content, buffers = replies.pages[-1]
    content = {k: v for k, v in content.items() if k != "type"}
    state = {
        k: v
        for k, v in w.get_state().items()
        if not k.startswith("_") and k not in ("reply", "overview_bar")
    }
    return state, content, np.frombuffer(buffers[0], np.float32).tolist()


def run(page, first_page, script: str):
    state, reply, data = first_page
    return page.evaluate(
        HARNESS, {"src": SOURCE, "state": state, "reply": reply, "data": data, "script": script}
    )


def test_a_page_that_came_before_the_view_is_drawn_asking_nothing(browser_page, first_page):
    got = run(
        browser_page,
        first_page,
        """async ({ mod, made, view, state, reply, page, settle }) => {
          const model = made({ ...state, reply: page(reply.id) });  // as a new model gets it
          const root = view(model, 900);
          await settle(50);
          return { sent: model.sent.map((m) => [m.type, m.id]), drawnId: root.dataset.drawnId,
                   pages: root.dataset.pages };
        }""",
    )
    assert got["drawnId"] == str(first_page[1]["id"])
    assert got["pages"] == "1"
    # nothing asked for; the kernel is told the page was drawn (its read-ahead waits for that)
    assert [s for s in got["sent"] if s[0] != "resize"] == [["drawn", first_page[1]["id"]]]


def test_a_page_for_an_older_request_is_not_drawn_and_the_newest_is(browser_page, first_page):
    got = run(
        browser_page,
        first_page,
        """async ({ mod, made, view, state, reply, page, settle }) => {
          const newest = reply.id + 1;
          const model = made({ ...state, view_id: newest, reply: page(reply.id) });
          const root = view(model, 900);
          await settle(50);
          const stale = root.dataset.drawnId || null;
          model.set("reply", page(newest));
          await settle(50);
          return { stale, drawnId: root.dataset.drawnId, pages: root.dataset.pages,
                   drawn: model.sent.filter((m) => m.type === "drawn").map((m) => m.id) };
        }""",
    )
    assert got["stale"] is None
    assert got["drawnId"] == str(first_page[1]["id"] + 1) and got["pages"] == "1"
    assert got["drawn"] == [first_page[1]["id"] + 1]  # the stale page is not reported drawn


def test_a_resize_redraws_only_when_the_width_changed(browser_page, first_page):
    got = run(
        browser_page,
        first_page,
        """async ({ mod, made, view, state, reply, page, settle }) => {
          const model = made({ ...state, reply: page(reply.id) });
          const root = view(model, 900);
          await settle(300);  // the first resize report, and any debounced one after it
          const first = { draws: root.dataset.draws, drawnAt: root.dataset.drawnAt };
          root.style.minHeight = "2000px";  // observed, but the width stays
          await settle(300);
          const same = root.dataset.draws;
          root.parentElement.style.width = "700px";
          await settle(300);
          return { first, same, wider: root.dataset.draws, drawnAt: root.dataset.drawnAt,
                   resizes: model.sent.filter((m) => m.type === "resize").map((m) => m.width) };
        }""",
    )
    assert got["first"]["draws"] == "1"
    assert got["same"] == "1"
    assert got["wider"] == "2"  # the new width is drawn
    assert got["drawnAt"] == got["first"]["drawnAt"]  # when the page first came on screen
    assert len(got["resizes"]) >= 1 and got["resizes"][-1] < 700


def test_event_labels_that_would_overlap_one_drawn_are_left_out(browser_page, first_page):
    # a zoomed-out page puts close events a pixel apart: their texts must not print over each
    # other (annotations and marked events alike); one far from them is labelled
    got = run(
        browser_page,
        first_page,
        """async ({ mod, made, view, state, reply, page, settle }) => {
          const at = (t, text) => ({ t: reply.start + t, text, type: "", duration: null });
          const model = made({ ...state, reply: page(reply.id),
            annotations: [at(1.0, "recording started"), at(1.01, "eyes closed"),
                          at(8.0, "patient moved")],
            marks: [{ ...at(1.02, "sharp wave"), duration: 0 }] });
          const root = view(model, 900);
          await settle(50);
          return { labels: root.dataset.drawnLabels };
        }""",
    )
    assert got["labels"] == "recording started|patient moved"
