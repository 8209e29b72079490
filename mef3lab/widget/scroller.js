// The scroller's front end: draws the pages the kernel sends on a canvas, forwards keys and clicks.
// State lives in the kernel (traitlets); this module only draws and asks. A reply is drawn only
// if its id is the newest request the model knows of (`view_id`), so stale pages are never shown.

const GUTTER = 96; // px left of the traces, for channel labels
const TOP = 18; // px above the traces, for annotation texts
const AXIS = 24; // px below the traces, for the time axis
const KEYS = new Set(["ArrowRight", "ArrowLeft", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"]);
const OVERVIEW = 40; // px of the whole-recording bar under the traces
// the clinical toolbar: [trait, title, [label, value] ...]; "" = off / as recorded
const CHOICES = [
  ["montage", "montage", [["as recorded", null], ["average", "average"], ["double banana", "double banana"],
    ["transverse", "transverse"]]],
  ["highpass", "high-pass (Hz)", [["HP off", null], ...[0.1, 0.3, 0.5, 1, 2, 5].map((f) => [`HP ${f}`, f])]],
  ["lowpass", "low-pass (Hz)", [["LP off", null], ...[15, 30, 35, 50, 70, 100].map((f) => [`LP ${f}`, f])]],
  ["notch", "notch (Hz, with its first harmonic)", [["notch off", null], ["notch 50", 50], ["notch 60", 60]]],
];
const LENGTHS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600];
const STEPS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

function floats(buf) {
  if (buf instanceof ArrayBuffer) return new Float32Array(buf);
  if (buf.byteOffset % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function clock(seconds, step) {
  const iso = new Date(seconds * 1000).toISOString(); // UTC
  return iso.slice(11, step < 1 ? 22 : 19);
}

function html(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el }) {
  const root = html("div", "m3s");
  root.tabIndex = 0;
  root.setAttribute("data-lm-suppress-shortcuts", "true"); // JupyterLab: no notebook shortcuts from here
  const bar = html("div", "m3s-bar");
  const button = (label, key, title) => {
    const b = html("button", "m3s-btn", label);
    b.title = title;
    b.addEventListener("click", () => { stamp(); model.send({ type: "key", key: key.key, shift: !!key.shift }); });
    bar.append(b);
  };
  button("|◀", { key: "Home" }, "recording start (Home)");
  button("◀", { key: "ArrowLeft" }, "previous page (←)");
  button("◁", { key: "ArrowLeft", shift: true }, "half a page back (Shift+←)");
  button("▷", { key: "ArrowRight", shift: true }, "half a page on (Shift+→)");
  button("▶", { key: "ArrowRight" }, "next page (→)");
  const length = html("select", "m3s-len");
  length.title = "page length (s)";
  bar.append(length, html("span", "m3s-unit", "s"));
  button("−", { key: "ArrowDown" }, "less gain (↓)");
  const gain = html("span", "m3s-gain");
  bar.append(gain);
  button("+", { key: "ArrowUp" }, "more gain (↑)");
  button("▲", { key: "PageUp" }, "channels above (PgUp)");
  const rowsText = html("span", "m3s-rows");
  bar.append(rowsText);
  button("▼", { key: "PageDown" }, "channels below (PgDn)");
  const picker = html("details", "m3s-chans");
  const pickerList = html("div", "m3s-chans-list");
  picker.append(html("summary", "", "channels"), pickerList);
  bar.append(picker);
  const jump = html("input", "m3s-goto");
  jump.placeholder = "go to: s or HH:MM:SS";
  bar.append(jump);
  const start = html("span", "m3s-start");
  bar.append(start);
  const review = html("div", "m3s-bar");
  const selects = {};
  for (const [name, title, options] of CHOICES) {
    const sel = html("select", "m3s-" + name);
    sel.title = title;
    sel.append(...options.map(([label, value], i) => { const o = html("option", "", label); o.value = String(i); return o; }));
    sel.addEventListener("change", () => {
      model.send({ type: "set", name, value: options[Number(sel.value)][1] });
      root.focus();
    });
    selects[name] = sel;
    review.append(sel);
  }
  const note = html("span", "m3s-note");
  review.append(note, html("span", "m3s-hint", "m: mark event at cursor · click a label: bad channel"));
  const canvas = html("canvas", "m3s-canvas");
  const strip = html("canvas", "m3s-overview");
  strip.title = "the whole recording: click or drag to go there";
  const message = html("div", "m3s-msg");
  root.append(bar, review, canvas, strip, message);
  el.append(root);

  let reply = null; // {msg, data}
  let drawnId = 0;
  let bar_ = null; // the overview: {msg, data}
  let cursor = null; // seconds from the start of the last click in the traces

  function choices() {
    for (const [name, , options] of CHOICES) {
      let i;
      if (name === "montage") {
        i = options.findIndex(([label]) => label === model.get("montage_label")); // "pairs": none of these
      } else {
        const value = model.get(name);
        const first = Array.isArray(value) ? (value.length ? value[0] : null) : value;
        i = Math.max(0, options.findIndex(([, v]) => v === first));
      }
      selects[name].value = String(i);
    }
    note.textContent = model.get("note");
  }

  function stamp() { root.dataset.keyAt = String(performance.now()); }

  function fillLengths() {
    const current = model.get("page_seconds");
    const values = LENGTHS.includes(current) ? LENGTHS : [...LENGTHS, current].sort((a, b) => a - b);
    length.replaceChildren(...values.map((v) => {
      const o = html("option", "", String(v));
      o.value = String(v);
      o.selected = v === current;
      return o;
    }));
  }

  function fillPicker() {
    const shown = new Set(model.get("channels"));
    pickerList.replaceChildren(...model.get("all_channels").map((name) => {
      const label = html("label", "m3s-chan");
      const box = html("input");
      box.type = "checkbox";
      box.value = name;
      box.checked = shown.has(name);
      label.append(box, document.createTextNode(name));
      return label;
    }));
  }

  function pick() {
    const chosen = [...pickerList.querySelectorAll("input:checked")].map((b) => b.value);
    if (!chosen.length) { fillPicker(); return; } // at least one channel stays
    model.set("channels", chosen);
    model.save_changes();
  }

  function texts() {
    const n = model.get("channels").length, first = model.get("first_row");
    rowsText.textContent = `ch ${first + 1}–${Math.min(first + model.get("rows"), n)} of ${n}`;
    start.textContent = model.get("page_label");
    gain.textContent = `${model.get("gain")} ${model.get("units")}/div`;
    choices();
    message.textContent = model.get("message");
    message.style.display = model.get("message") ? "" : "none";
  }

  function size() {
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(200, (root.clientWidth || 800) - 10); // inside the padding
    const n = reply ? reply.msg.traces.length : Math.min(model.get("rows"), model.get("channels").length);
    const height = TOP + n * model.get("row_px") + AXIS;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    return { dpr, width, height, n };
  }

  function draw() {
    const { dpr, width, height, n } = size();
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    if (!reply) return;
    const { msg, data } = reply;
    const W = width - GUTTER, rowH = model.get("row_px"), H = n * rowH, secs = msg.seconds;
    const x = (s) => GUTTER + (s / secs) * W;
    // time axis in wall-clock time (UTC), with a light grid
    const t0 = model.get("start_uutc") / 1e6 + msg.start;
    const step = STEPS.find((s) => secs / s <= 10) || STEPS[STEPS.length - 1];
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "top";
    ctx.textAlign = "center";
    for (let tick = Math.ceil(t0 / step - 1e-9) * step; tick <= t0 + secs + 1e-9; tick += step) {
      const xt = x(tick - t0);
      ctx.fillStyle = "#e6e6e6";
      ctx.fillRect(Math.round(xt), TOP, 1, H);
      ctx.fillStyle = "#333";
      ctx.fillText(clock(tick, step), Math.min(Math.max(xt, GUTTER + 24), width - 26), TOP + H + 5);
    }
    // annotations: a marker and its text
    ctx.textAlign = "left";
    for (const a of model.get("annotations")) {
      const rel = a.t - msg.start;
      const span = a.duration ? a.duration : 0;
      if (rel + span < 0 || rel > secs) continue;
      ctx.fillStyle = "rgba(255, 140, 0, 0.15)";
      if (span) ctx.fillRect(x(Math.max(rel, 0)), TOP, x(Math.min(rel + span, secs)) - x(Math.max(rel, 0)), H);
      ctx.fillStyle = "#d96b00";
      if (rel >= 0) ctx.fillRect(Math.round(x(rel)), TOP - 4, 2, H + 4);
      ctx.fillText(a.text, x(Math.max(rel, 0)) + 4, 3);
    }
    // traces: NaN lifts the pen, so gaps stay gaps
    // events marked in review, and the cursor
    ctx.textAlign = "left";
    for (const m of model.get("marks")) {
      const rel = m.t - msg.start;
      if (rel + m.duration < 0 || rel > secs) continue;
      ctx.fillStyle = "rgba(0, 150, 60, 0.15)";
      if (m.duration) ctx.fillRect(x(Math.max(rel, 0)), TOP, x(Math.min(rel + m.duration, secs)) - x(Math.max(rel, 0)), H);
      ctx.fillStyle = "#00963c";
      if (rel >= 0) ctx.fillRect(Math.round(x(rel)), TOP - 4, 2, H + 4);
      ctx.fillText(m.text, x(Math.max(rel, 0)) + 4, 3);
    }
    if (cursor !== null && cursor >= msg.start && cursor <= msg.start + secs) {
      ctx.fillStyle = "rgba(0, 0, 0, 0.35)";
      ctx.fillRect(Math.round(x(cursor - msg.start)), TOP, 1, H);
    }
    const gainV = model.get("gain");
    const bad = new Set(model.get("bad_channels"));
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    msg.traces.forEach((tr, row) => {
      const mid = TOP + (row + 0.5) * rowH;
      ctx.fillStyle = tr.error ? "#c00" : bad.has(tr.name) ? "#aaa" : "#222";
      ctx.font = `${Math.min(12, Math.max(7, rowH - 2))}px sans-serif`;
      ctx.fillText(tr.error ? `${tr.name} ✕` : tr.name, GUTTER - 6, mid);
      if (tr.error) {
        ctx.textAlign = "left";
        ctx.fillText("could not be read", GUTTER + 6, mid);
        ctx.textAlign = "right";
        return;
      }
      const y = (v) => mid - (v / gainV) * rowH;
      ctx.save();
      ctx.beginPath();
      ctx.rect(GUTTER, TOP, W, H);
      ctx.clip();
      ctx.beginPath();
      let pen = false;
      if (tr.kind === "raw") {
        for (let j = 0; j < tr.n; j++) {
          const v = data[tr.offset + j];
          if (v !== v) { pen = false; continue; }
          const px = x(tr.t0 + j * tr.dt);
          if (pen) ctx.lineTo(px, y(v)); else { ctx.moveTo(px, y(v)); pen = true; }
        }
      } else {
        for (let c = 0; c < tr.n; c++) {
          const lo = data[tr.offset + c], hi = data[tr.offset + tr.n + c];
          if (lo !== lo) { pen = false; continue; }
          const px = x(tr.t0 + (c + 0.5) * tr.dt);
          if (pen) ctx.lineTo(px, y(lo)); else { ctx.moveTo(px, y(lo)); pen = true; }
          ctx.lineTo(px, y(hi));
        }
      }
      ctx.strokeStyle = bad.has(tr.name) ? "#c8c8c8" : "#1f4e9c";
      ctx.lineWidth = 1;
      ctx.stroke();
      ctx.restore();
    });
    ctx.strokeStyle = "#999";
    ctx.strokeRect(GUTTER + 0.5, TOP + 0.5, W - 1, H);
    drawnId = msg.id;
    root.dataset.drawnId = String(msg.id);
    root.dataset.drawnStart = String(msg.start);
    root.dataset.drawnChannels = msg.traces.map((tr) => tr.name).join(",");
    root.dataset.drawnAt = String(performance.now());
    drawOverview();
  }

  // the overview bar: per column the channels' median range (from the MEF block index), gaps grey,
  // annotations orange, marks green, the page on screen as a blue box
  function drawOverview() {
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(200, (root.clientWidth || 800) - 10);
    if (strip.width !== Math.round(width * dpr)) {
      strip.width = Math.round(width * dpr);
      strip.height = Math.round(OVERVIEW * dpr);
      strip.style.width = `${width}px`;
      strip.style.height = `${OVERVIEW}px`;
    }
    const ctx = strip.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#f7f7f7";
    ctx.fillRect(0, 0, width, OVERVIEW);
    const W = width - GUTTER, total = model.get("duration");
    const x = (s) => GUTTER + (s / total) * W;
    ctx.fillStyle = "#333";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText("overview", GUTTER - 6, OVERVIEW / 2);
    if (bar_) {
      const { msg, data } = bar_;
      let top = 0;
      for (let c = 0; c < msg.n; c++) if (data[c] === data[c] && data[c] > top) top = data[c];
      const sorted = Array.from(data).filter((v) => v === v).sort((a, b) => a - b);
      const scale = sorted.length ? sorted[Math.floor(sorted.length * 0.98)] || top : 1;
      const cw = W / msg.n;
      for (let c = 0; c < msg.n; c++) {
        const v = data[c];
        if (v !== v) { ctx.fillStyle = "#ddd"; ctx.fillRect(GUTTER + c * cw, 0, cw + 0.5, OVERVIEW); continue; }
        const h = Math.min(1, v / (scale || 1)) * (OVERVIEW - 4);
        ctx.fillStyle = "#7d93b8";
        ctx.fillRect(GUTTER + c * cw, OVERVIEW - 2 - h, cw + 0.5, h);
      }
      root.dataset.overviewColumns = String(msg.n);
      root.dataset.overviewAt = String(performance.now());
    }
    for (const [list, colour] of [[model.get("annotations"), "#d96b00"], [model.get("marks"), "#00963c"]]) {
      ctx.fillStyle = colour;
      for (const a of list) ctx.fillRect(Math.round(x(a.t)), 0, 1, OVERVIEW);
    }
    const a = model.get("start"), len = model.get("page_seconds");
    ctx.strokeStyle = "#1f4e9c";
    ctx.lineWidth = 2;
    ctx.strokeRect(x(a), 1, Math.max(3, x(a + len) - x(a)), OVERVIEW - 2);
  }

  function overviewAt(e) {
    const r = strip.getBoundingClientRect();
    const frac = (e.clientX - r.left - GUTTER) / (r.width - GUTTER);
    if (frac < 0 || frac > 1) return;
    stamp();
    const t = frac * model.get("duration") - model.get("page_seconds") / 2;
    model.send({ type: "goto", text: String(Math.max(0, t)) });
  }
  let dragging = false;
  strip.addEventListener("mousedown", (e) => { dragging = true; overviewAt(e); setTimeout(() => root.focus(), 0); });
  strip.addEventListener("mousemove", (e) => { if (dragging) overviewAt(e); });
  window.addEventListener("mouseup", () => { dragging = false; });

  // a click on a label marks the channel bad (again: good); a click in the traces puts the cursor there
  canvas.addEventListener("click", (e) => {
    if (!reply) return;
    const r = canvas.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    const row = Math.floor((py - TOP) / model.get("row_px"));
    if (px < GUTTER && row >= 0 && row < reply.msg.traces.length) {
      model.send({ type: "bad", name: reply.msg.traces[row].name });
    } else if (px >= GUTTER) {
      cursor = reply.msg.start + ((px - GUTTER) / (r.width - GUTTER)) * reply.msg.seconds;
      draw();
    }
  });

  function onPage(msg, buffers) {
    if (msg.type === "overview") { bar_ = { msg, data: floats(buffers[0]) }; drawOverview(); return; }
    if (msg.type !== "page" || msg.id < model.get("view_id") || msg.id <= drawnId) return; // stale
    root.dataset.gotAt = String(performance.now());
    reply = { msg, data: floats(buffers[0]) };
    draw();
    root.dataset.pages = String(Number(root.dataset.pages || 0) + 1); // pages drawn (tests, benchmarks)
  }

  root.addEventListener("keydown", (e) => {
    if (e.key === "Tab") return; // leaving the widget stays possible
    e.stopPropagation(); // never a notebook shortcut
    if (e.target === jump) {
      if (e.key === "Enter") { model.send({ type: "goto", text: jump.value }); root.focus(); }
      return;
    }
    if (e.target === length || pickerList.contains(e.target)) return; // their own keys
    if (e.target.tagName === "SELECT") return;
    if (e.key === "m" && reply) {
      model.send({ type: "mark", t: cursor !== null ? cursor : reply.msg.start, text: "event" });
      return;
    }
    if (KEYS.has(e.key)) {
      e.preventDefault();
      stamp();
      model.send({ type: "key", key: e.key, shift: e.shiftKey });
    }
  });
  canvas.addEventListener("mousedown", () => setTimeout(() => root.focus(), 0));
  pickerList.addEventListener("change", pick);
  length.addEventListener("change", () => { model.set("page_seconds", Number(length.value)); model.save_changes(); });

  let resizeTimer = 0;
  const observer = new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      const columns = Math.max(50, Math.floor((root.clientWidth || 800) - 10 - GUTTER));
      if (columns !== model.get("width_px")) model.send({ type: "resize", width: columns });
      draw();
    }, 80);
  });
  observer.observe(root);

  const listeners = [
    ["msg:custom", onPage],
    ["change:gain", () => { draw(); texts(); }],
    ["change:annotations", () => draw()],
    ["change:marks", () => draw()],
    ["change:bad_channels", () => draw()],
    ["change:note", () => texts()],
    ["change:montage_label", () => texts()],
    ["change:highpass", () => texts()],
    ["change:lowpass", () => texts()],
    ["change:notch", () => texts()],
    ["change:page_label", () => texts()],
    ["change:message", () => texts()],
    ["change:page_seconds", () => fillLengths()],
    ["change:channels", () => { fillPicker(); texts(); }],
    ["change:first_row", () => texts()],
  ];
  for (const [event, listener] of listeners) model.on(event, listener);
  fillLengths();
  fillPicker();
  texts();
  draw();
  return () => {
    observer.disconnect();
    clearTimeout(resizeTimer);
    for (const [event, listener] of listeners) model.off(event, listener);
  };
}

export default { render };
