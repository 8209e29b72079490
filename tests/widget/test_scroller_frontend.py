"""The scroller's ES module alone in a real browser (Debian's chromium), with a stand-in model.

anywidget hands the module's `initialize` and each view a stand-in of their own for one model
(each a new object), so the module finds a model's replies by its `_key`. A reply that comes
after the model listens but before its view exists is drawn when the view comes, with nothing
asked again; a resize that leaves the width as drawn does not redraw; one that changes it does.
The page is a real first page from a real Scroller (its state and its reply, as sent).
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
    const model = {
      attrs, sent, handlers,
      get: (k) => attrs[k],
      send: (m) => sent.push(m),
      on: (ev, f) => { (handlers[ev] ||= []).push(f); },
      off: (ev, f) => { handlers[ev] = (handlers[ev] || []).filter((g) => g !== f); },
      deliver: (msg, buffers) => (handlers["msg:custom"] || []).forEach((f) => f(msg, buffers)),
      // what anywidget hands out: a new object per call, bound to the same model
      proxy: () => ({ get: model.get, send: model.send, on: model.on, off: model.off }),
    };
    return model;
  };
  const view = (model, width) => {
    const el = document.createElement("div");
    el.style.width = `${width}px`;
    document.body.append(el);
    mod.render({ model: model.proxy(), el });
    return el.querySelector(".m3s");
  };
  const buffer = new DataView(new Float32Array(data).buffer);
  const settle = (ms) => new Promise((r) => setTimeout(r, ms));
  return await (eval(script))({ mod, made, view, state, reply, buffer, settle });
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
    """A real scroller's state and its first reply (content, float32 values)."""
    w, replies = scroll(recording, rows=4)
    content, buffers = replies.pages[-1]
    state = {k: v for k, v in w.get_state().items() if not k.startswith("_") or k == "_key"}
    return state, content, np.frombuffer(buffers[0], np.float32).tolist()


def run(page, first_page, script: str):
    state, reply, data = first_page
    return page.evaluate(
        HARNESS, {"src": SOURCE, "state": state, "reply": reply, "data": data, "script": script}
    )


def test_a_reply_after_the_model_listens_is_drawn_by_a_later_view_asking_nothing(
    browser_page, first_page
):
    got = run(
        browser_page,
        first_page,
        """async ({ mod, made, view, state, reply, buffer, settle }) => {
          const model = made({ ...state });
          mod.initialize({ model: model.proxy() });
          const asked = model.sent.map((m) => m.type);
          model.deliver(reply, [buffer]);  // before any view exists
          const root = view(model, 900);
          await settle(50);
          return { asked, sent: model.sent.map((m) => m.type), drawnId: root.dataset.drawnId,
                   pages: root.dataset.pages };
        }""",
    )
    assert got["asked"] == ["ready"]  # the model asks as soon as it listens
    assert got["drawnId"] == str(first_page[1]["id"])
    assert got["pages"] == "1"
    assert got["sent"].count("ready") == 1  # the view asked nothing more


def test_another_models_reply_is_not_drawn(browser_page, first_page):
    got = run(
        browser_page,
        first_page,
        """async ({ mod, made, view, state, reply, buffer, settle }) => {
          const a = made({ ...state }), b = made({ ...state, _key: state._key + "-b" });
          mod.initialize({ model: a.proxy() });
          mod.initialize({ model: b.proxy() });
          a.deliver(reply, [buffer]);
          const root = view(b, 900);
          await settle(50);
          return { drawnId: root.dataset.drawnId || null };
        }""",
    )
    assert got["drawnId"] is None


def test_a_resize_redraws_only_when_the_width_changed(browser_page, first_page):
    got = run(
        browser_page,
        first_page,
        """async ({ mod, made, view, state, reply, buffer, settle }) => {
          const model = made({ ...state });
          mod.initialize({ model: model.proxy() });
          model.deliver(reply, [buffer]);
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
        """async ({ mod, made, view, state, reply, buffer, settle }) => {
          const at = (t, text) => ({ t: reply.start + t, text, type: "", duration: null });
          const model = made({ ...state,
            annotations: [at(1.0, "recording started"), at(1.01, "eyes closed"),
                          at(8.0, "patient moved")],
            marks: [{ ...at(1.02, "sharp wave"), duration: 0 }] });
          mod.initialize({ model: model.proxy() });
          model.deliver(reply, [buffer]);
          const root = view(model, 900);
          await settle(50);
          return { labels: root.dataset.drawnLabels };
        }""",
    )
    assert got["labels"] == "recording started|patient moved"


def test_each_scroller_has_a_key_of_its_own(scroll, recording):
    a, _ = scroll(recording, rows=2)
    b, _ = scroll(recording, rows=2)
    assert a.get_state()["_key"] and a.get_state()["_key"] != b.get_state()["_key"]
