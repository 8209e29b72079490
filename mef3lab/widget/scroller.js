// The scroller's front end: draws the pages the kernel sends on a canvas, forwards keys and clicks.
// State lives in the kernel (traitlets); this module only draws and asks. A reply is drawn only
// if its id is the newest request the model knows of (`view_id`), so stale pages are never shown.
// The newest reply and the overview bar are traits (binary buffers), so a view created after
// they arrived (the first render, while this module loads; a reload) draws them from the model.
// In order: layout (the DOM), model sync (texts and menus from the traits), drawing (the page,
// the overview bar), input (keys, clicks, resizes); `render` wires them together.

const GUTTER_MIN = 64, GUTTER_MAX = 180; // px left of the traces, for channel labels
const LABEL_FONT = "12px sans-serif";
const TOP = 18; // px above the traces, for annotation texts
const AXIS = 24; // px below the traces, for the time axis
const OVERVIEW = 40; // px of the whole-recording bar under the traces
const KEYS = new Set(["ArrowRight", "ArrowLeft", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"]);
const LENGTHS = [0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600];
const STEPS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

function floats(buf) {
  if (buf instanceof ArrayBuffer) return new Float32Array(buf);
  if (buf.byteOffset % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

// A time of day on the axis: the recording's local time (its UTC offset) unless UTC is
// asked for; de-identified times as time since MEF's offset epoch, "+HH:MM:SS".
function clock(seconds, step, model) {
  const offset = model.get("utc") ? 0 : model.get("utc_offset_s");
  const ms = Math.round((seconds + offset) * 1000); // a tick at .9 s is not .899
  const text = new Date(ms).toISOString().slice(11, step < 1 ? 22 : 19);
  if (!model.get("deidentified")) return text;
  const days = Math.floor(seconds / 86400);
  return "+" + (days > 0 ? `${days} d ` : "") + text;
}

function html(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- layout -------------------------------------------------------------------------------

// The widget's elements: the navigation bar, the review bar (one select per menu the model
// sends), the trace canvas, the overview strip and the message line.
function layout(menus) {
  const ui = { root: html("div", "m3s"), buttons: [], selects: {} };
  ui.root.tabIndex = 0;
  ui.root.setAttribute("data-lm-suppress-shortcuts", "true"); // JupyterLab: no notebook shortcuts from here
  const bar = html("div", "m3s-bar");
  const button = (label, key, shift, title) => {
    const node = html("button", "m3s-btn", label);
    node.title = title;
    ui.buttons.push({ node, key, shift });
    bar.append(node);
  };
  button("|◀", "Home", false, "recording start (Home)");
  button("◀", "ArrowLeft", false, "previous page (←)");
  button("◁", "ArrowLeft", true, "half a page back (Shift+←)");
  button("▷", "ArrowRight", true, "half a page on (Shift+→)");
  button("▶", "ArrowRight", false, "next page (→)");
  ui.length = html("select", "m3s-len");
  ui.length.title = "page length (s)";
  bar.append(ui.length, html("span", "m3s-unit", "s"));
  button("−", "ArrowDown", false, "less gain (↓)");
  ui.gain = html("span", "m3s-gain");
  bar.append(ui.gain);
  button("+", "ArrowUp", false, "more gain (↑)");
  button("▲", "PageUp", false, "channels above (PgUp)");
  ui.rows = html("span", "m3s-rows");
  bar.append(ui.rows);
  button("▼", "PageDown", false, "channels below (PgDn)");
  ui.picker = html("details", "m3s-chans");
  ui.pickerList = html("div", "m3s-chans-list");
  ui.picker.append(html("summary", "", "channels"), ui.pickerList);
  ui.jump = html("input", "m3s-goto");
  ui.jump.placeholder = "go to: s or HH:MM:SS";
  ui.start = html("span", "m3s-start");
  ui.utc = html("input");
  ui.utc.type = "checkbox";
  ui.utcBox = html("label", "m3s-utc");
  ui.utcBox.title = "times in UTC instead of the recording's local time";
  ui.utcBox.append(ui.utc, document.createTextNode("UTC"));
  bar.append(ui.picker, ui.jump, ui.start, ui.utcBox);
  const review = html("div", "m3s-bar");
  for (const menu of menus) {
    const select = html("select", "m3s-" + menu.trait);
    select.title = menu.title;
    select.append(...menu.options.map((option, i) => {
      const node = html("option", "", option.label);
      node.value = String(i);
      return node;
    }));
    ui.selects[menu.trait] = select;
    review.append(select);
  }
  ui.note = html("span", "m3s-note");
  review.append(ui.note, html("span", "m3s-hint", "m: mark event at cursor · click a label: bad channel"));
  ui.canvas = html("canvas", "m3s-canvas");
  ui.strip = html("canvas", "m3s-overview");
  ui.strip.title = "the whole recording: click or drag to go there";
  ui.message = html("div", "m3s-msg");
  ui.root.append(bar, review, ui.canvas, ui.strip, ui.message);
  return ui;
}

// -- model sync ---------------------------------------------------------------------------

// The option a menu shows: the one named by its label trait (the montage: "pairs" matches
// none), else the one of its trait's value (a list's first).
function menuIndex(menu, model) {
  if (menu.label_trait) return menu.options.findIndex((o) => o.label === model.get(menu.label_trait));
  const value = model.get(menu.trait);
  const first = Array.isArray(value) ? (value.length ? value[0] : null) : value;
  return Math.max(0, menu.options.findIndex((o) => o.value === first));
}

function showTexts(ui, model, menus) {
  const n = model.get("channels").length, first = model.get("first_row");
  ui.rows.textContent = `ch ${first + 1}–${Math.min(first + model.get("rows"), n)} of ${n}`;
  ui.start.textContent = model.get("page_label");
  ui.gain.textContent = `${model.get("gain")} ${model.get("units")}/div`;
  for (const menu of menus) ui.selects[menu.trait].value = String(menuIndex(menu, model));
  const bad = model.get("bad_channels");
  ui.note.textContent = [model.get("note"), bad.length ? `bad: ${bad.join(", ")}` : ""]
    .filter(Boolean).join(" · ");
  ui.message.textContent = model.get("message");
  ui.message.style.display = model.get("message") ? "" : "none";
  ui.utc.checked = model.get("utc");
  ui.utcBox.style.display = model.get("deidentified") ? "none" : ""; // no clock to change
}

function fillLengths(ui, model) {
  const current = model.get("page_seconds");
  const values = LENGTHS.includes(current) ? LENGTHS : [...LENGTHS, current].sort((a, b) => a - b);
  ui.length.replaceChildren(...values.map((v) => {
    const node = html("option", "", String(v));
    node.value = String(v);
    node.selected = v === current;
    return node;
  }));
}

function fillPicker(ui, model) {
  const shown = new Set(model.get("channels"));
  ui.pickerList.replaceChildren(...model.get("all_channels").map((name) => {
    const label = html("label", "m3s-chan");
    const box = html("input");
    box.type = "checkbox";
    box.value = name;
    box.checked = shown.has(name);
    label.append(box, document.createTextNode(name));
    return label;
  }));
}

// -- drawing ------------------------------------------------------------------------------

// The label gutter: as wide as the longest label needs, within bounds; a longer label is
// shortened in the middle (its full name is the tooltip).
function gutterFor(names) {
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = LABEL_FONT;
  const widest = Math.max(0, ...names.map((n) => ctx.measureText(n + " ✕").width));
  return Math.round(Math.min(GUTTER_MAX, Math.max(GUTTER_MIN, widest + 14)));
}

function fitLabel(ctx, name, room) {
  if (ctx.measureText(name).width <= room) return name;
  let keep = name.length - 1;
  const cut = (k) => name.slice(0, Math.ceil(k / 2)) + "…" + name.slice(name.length - Math.floor(k / 2));
  while (keep > 2 && ctx.measureText(cut(keep)).width > room) keep--;
  return cut(keep);
}

// What a page was drawn for: the widget's width and the labels' gutter.
function sizeOf(width, gutter) {
  return `${width}/${gutter}`;
}

function widthOf(root) {
  return Math.max(200, (root.clientWidth || 800) - 10); // inside the padding
}

// Size a canvas in CSS pixels, backed by device pixels; a 2D context drawing in CSS pixels.
function fit(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

// The time axis in wall-clock time (`clock`), with a light grid; `t0` is the page start in s UTC.
function drawAxis(ctx, frame, t0, model) {
  const { width, H, secs, x, gutter } = frame;
  const step = STEPS.find((s) => secs / s <= 10) || STEPS[STEPS.length - 1];
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "center";
  let right = -Infinity; // where the last label ends: a label that would overlap it is left out
  for (let tick = Math.ceil(t0 / step - 1e-9) * step; tick <= t0 + secs + 1e-9; tick += step) {
    const xt = x(tick - t0);
    ctx.fillStyle = "#e6e6e6";
    ctx.fillRect(Math.round(xt), TOP, 1, H);
    ctx.fillStyle = "#333";
    const text = clock(tick, step, model), half = ctx.measureText(text).width / 2 + 2;
    const at = Math.min(Math.max(xt, gutter + half), width - half);
    if (at - half < right) continue;
    ctx.fillText(text, at, TOP + H + 5);
    right = at + half;
  }
}

// Annotations or marked events ({t, duration, text}): a shaded span, a marker and the text.
// `labels` holds the [left, right, text] of the texts drawn so far on this page: one that would
// overlap one is left out (its marker stays), so close events never print over each other.
function drawSpans(ctx, frame, items, pageStart, shade, colour, labels) {
  const { H, secs, x } = frame;
  ctx.textAlign = "left";
  for (const item of items) {
    const rel = item.t - pageStart;
    const span = item.duration || 0;
    if (rel + span < 0 || rel > secs) continue;
    ctx.fillStyle = shade;
    if (span) ctx.fillRect(x(Math.max(rel, 0)), TOP, x(Math.min(rel + span, secs)) - x(Math.max(rel, 0)), H);
    ctx.fillStyle = colour;
    if (rel >= 0) ctx.fillRect(Math.round(x(rel)), TOP - 4, 2, H + 4);
    const left = x(Math.max(rel, 0)) + 4, right = left + ctx.measureText(item.text).width + 4;
    if (labels.some(([a, b]) => left < b && right > a)) continue;
    labels.push([left, right, item.text]);
    ctx.fillText(item.text, left, 3);
  }
}

// One trace's path: NaN lifts the pen, so gaps stay gaps; "minmax" columns are vertical strokes.
function tracePath(ctx, tr, data, x, y) {
  ctx.beginPath();
  let pen = false;
  if (tr.kind === "raw") {
    for (let j = 0; j < tr.n; j++) {
      const v = data[tr.offset + j];
      if (v !== v) { pen = false; continue; }
      const px = x(tr.t0 + j * tr.dt);
      if (pen) ctx.lineTo(px, y(v)); else { ctx.moveTo(px, y(v)); pen = true; }
    }
    return;
  }
  for (let c = 0; c < tr.n; c++) {
    const lo = data[tr.offset + c], hi = data[tr.offset + tr.n + c];
    if (lo !== lo) { pen = false; continue; }
    const px = x(tr.t0 + (c + 0.5) * tr.dt);
    if (pen) ctx.lineTo(px, y(lo)); else { ctx.moveTo(px, y(lo)); pen = true; }
    ctx.lineTo(px, y(hi));
  }
}

// Each row: its label (red with ✕ if it could not be read, grey if marked bad) and its trace.
// Each trace is drawn around its page baseline (`tr.baseline`, its median).
function drawTraces(ctx, frame, traces, data, gain, bad) {
  const { W, H, rowH, x, gutter } = frame;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  traces.forEach((tr, row) => {
    const mid = TOP + (row + 0.5) * rowH;
    ctx.fillStyle = tr.error ? "#c00" : bad.has(tr.name) ? "#aaa" : "#222";
    ctx.font = `${Math.min(12, Math.max(7, rowH - 2))}px sans-serif`;
    ctx.fillText(fitLabel(ctx, tr.error ? `${tr.name} ✕` : tr.name, gutter - 8), gutter - 6, mid);
    if (tr.error) {
      ctx.textAlign = "left";
      ctx.fillText("could not be read", gutter + 6, mid);
      ctx.textAlign = "right";
      return;
    }
    const base = tr.baseline || 0;
    ctx.save();
    ctx.beginPath();
    ctx.rect(gutter, TOP, W, H);
    ctx.clip();
    tracePath(ctx, tr, data, x, (v) => mid - ((v - base) / gain) * rowH);
    ctx.strokeStyle = bad.has(tr.name) ? "#c8c8c8" : "#1f4e9c";
    ctx.lineWidth = 1;
    ctx.stroke();
    ctx.restore();
  });
}

// A shaft montage's rows: a line above each shaft's first row, and the shaft's name at its
// top left, over the traces.
function drawShafts(ctx, frame, traces, shafts) {
  const { W, rowH, gutter } = frame;
  ctx.save();
  ctx.font = "bold 11px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  traces.forEach((tr, row) => {
    const shaft = shafts[tr.name];
    if (!shaft || (row > 0 && shafts[traces[row - 1].name] === shaft)) return;
    const top = Math.round(TOP + row * rowH);
    if (row > 0) { ctx.fillStyle = "#555"; ctx.fillRect(0, top - 1, gutter + W, 2); }
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(gutter + 2, top + 1, ctx.measureText(shaft).width + 6, 13);
    ctx.fillStyle = "#8a1c1c";
    ctx.fillText(shaft, gutter + 5, top + 2);
  });
  ctx.restore();
}

// The page in `state.reply` (or a blank canvas before the first), then the overview bar.
function drawPage(ui, model, state) {
  const width = widthOf(ui.root), rowH = model.get("row_px");
  const n = state.reply ? state.reply.msg.traces.length : Math.min(model.get("rows"), model.get("channels").length);
  const height = TOP + n * rowH + AXIS;
  const ctx = fit(ui.canvas, width, height);
  state.drawnFor = sizeOf(width, state.gutter); // what a resize compares (watchSize)
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  if (!state.reply) return;
  const { msg, data } = state.reply;
  const gutter = state.gutter, W = width - gutter, H = n * rowH, secs = msg.seconds;
  const frame = { width, W, H, rowH, secs, gutter, x: (s) => gutter + (s / secs) * W };
  drawAxis(ctx, frame, model.get("start_uutc") / 1e6 + msg.start, model);
  const labels = []; // the event texts drawn (tests read them)
  drawSpans(ctx, frame, model.get("annotations"), msg.start, "rgba(255, 140, 0, 0.15)", "#d96b00", labels);
  drawSpans(ctx, frame, model.get("marks"), msg.start, "rgba(0, 150, 60, 0.15)", "#00963c", labels);
  if (state.cursor !== null && state.cursor >= msg.start && state.cursor <= msg.start + secs) {
    ctx.fillStyle = "rgba(0, 0, 0, 0.35)";
    ctx.fillRect(Math.round(frame.x(state.cursor - msg.start)), TOP, 1, H);
  }
  drawTraces(ctx, frame, msg.traces, data, model.get("gain"), new Set(model.get("bad_rows")));
  drawShafts(ctx, frame, msg.traces, model.get("row_shafts") || {});
  ctx.strokeStyle = "#999";
  ctx.strokeRect(gutter + 0.5, TOP + 0.5, W - 1, H);
  const tags = ui.root.dataset; // what tests and benchmarks read
  if (msg.id !== state.drawnId) tags.drawnAt = String(performance.now()); // a new page on screen
  tags.draws = String(Number(tags.draws || 0) + 1); // pages drawn, redraws included
  state.drawnId = msg.id;
  tags.drawnId = String(msg.id);
  tags.drawnStart = String(msg.start);
  tags.drawnSeconds = String(msg.seconds);
  tags.drawnChannels = msg.traces.map((tr) => tr.name).join(",");
  tags.drawnMontage = msg.state ? msg.state.montage : "";
  tags.drawnLabels = labels.map((label) => label[2]).join("|");
  drawOverview(ui, model, state);
}

// The overview bar: per column the channels' median range (from the MEF block index), gaps grey,
// annotations orange, marks green, the page on screen as a blue box.
function drawOverview(ui, model, state) {
  const width = widthOf(ui.root);
  const ctx = fit(ui.strip, width, OVERVIEW);
  ctx.fillStyle = "#f7f7f7";
  ctx.fillRect(0, 0, width, OVERVIEW);
  const gutter = state.gutter, W = width - gutter, total = model.get("duration");
  const x = (s) => gutter + (s / total) * W;
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText("overview", gutter - 6, OVERVIEW / 2);
  if (state.overview) {
    drawStrip(ctx, gutter, W, state.overview);
    ui.root.dataset.overviewColumns = String(state.overview.msg.n);
    ui.root.dataset.overviewAt = String(performance.now());
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

// The strip's columns, a third of the bar at their median value: a settling transient or an
// artefact stands out (clipped at the top) without flattening the rest.
function drawStrip(ctx, gutter, W, { msg, data }) {
  let top = 0;
  for (let c = 0; c < msg.n; c++) if (data[c] === data[c] && data[c] > top) top = data[c];
  const sorted = Array.from(data).filter((v) => v === v).sort((a, b) => a - b);
  const scale = sorted.length ? 3 * sorted[Math.floor(sorted.length / 2)] || top : 1;
  const cw = W / msg.n;
  for (let c = 0; c < msg.n; c++) {
    const v = data[c];
    if (v !== v) { ctx.fillStyle = "#ddd"; ctx.fillRect(gutter + c * cw, 0, cw + 0.5, OVERVIEW); continue; }
    const h = Math.min(1, v / (scale || 1)) * (OVERVIEW - 4);
    ctx.fillStyle = "#7d93b8";
    ctx.fillRect(gutter + c * cw, OVERVIEW - 2 - h, cw + 0.5, h);
  }
}

// -- input --------------------------------------------------------------------------------

// Every input of one view; each handler asks the kernel (or sets a trait) and, for what only
// the front end knows (the cursor), redraws. Returns what removes the window's listener.
function listenToInput(ui, model, state, menus, redraw) {
  const { root, canvas, strip, jump, length, pickerList } = ui;
  const stamp = () => { root.dataset.keyAt = String(performance.now()); };
  const press = (key, shift) => { stamp(); model.send({ type: "key", key, shift }); };
  const focusSoon = () => setTimeout(() => root.focus(), 0);

  for (const { node, key, shift } of ui.buttons) node.addEventListener("click", () => press(key, shift));
  for (const menu of menus) {
    const select = ui.selects[menu.trait];
    select.addEventListener("change", () => {
      model.send({ type: "set", name: menu.trait, value: menu.options[Number(select.value)].value });
      root.focus();
    });
  }

  root.addEventListener("keydown", (e) => {
    if (e.key === "Tab") return; // leaving the widget stays possible
    e.stopPropagation(); // never a notebook shortcut
    if (e.target === jump) {
      if (e.key === "Enter") { model.send({ type: "goto", text: jump.value }); root.focus(); }
      return;
    }
    if (e.target === length || e.target === ui.utc || pickerList.contains(e.target)) return; // their own keys
    if (e.target.tagName === "SELECT") return;
    if (e.key === "m" && state.reply) {
      model.send({ type: "mark", t: state.cursor !== null ? state.cursor : state.reply.msg.start, text: "event" });
      return;
    }
    if (KEYS.has(e.key)) {
      e.preventDefault();
      press(e.key, e.shiftKey);
    }
  });

  // a click on a label marks the channel bad (again: good); a click in the traces puts the cursor there
  canvas.addEventListener("click", (e) => {
    if (!state.reply) return;
    const r = canvas.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    const row = Math.floor((py - TOP) / model.get("row_px"));
    const { traces, start, seconds } = state.reply.msg;
    if (px < state.gutter && row >= 0 && row < traces.length) {
      model.send({ type: "bad", name: traces[row].name });
    } else if (px >= state.gutter) {
      state.cursor = start + ((px - state.gutter) / (r.width - state.gutter)) * seconds;
      redraw();
    }
  });
  // the full name of the label under the pointer, as a tooltip
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    const row = Math.floor((e.clientY - r.top - TOP) / model.get("row_px"));
    const traces = state.reply ? state.reply.msg.traces : [];
    const name = e.clientX - r.left < state.gutter && row >= 0 && row < traces.length ? traces[row].name : "";
    if (canvas.title !== name) canvas.title = name;
  });
  canvas.addEventListener("mousedown", focusSoon);

  // the overview bar: a click or a drag centres the page there
  let dragging = false;
  const overviewAt = (e) => {
    const r = strip.getBoundingClientRect();
    const frac = (e.clientX - r.left - state.gutter) / (r.width - state.gutter);
    if (frac < 0 || frac > 1) return;
    stamp();
    const t = frac * model.get("duration") - model.get("page_seconds") / 2;
    model.send({ type: "goto", text: String(Math.max(0, t)) });
  };
  strip.addEventListener("mousedown", (e) => { dragging = true; overviewAt(e); focusSoon(); });
  strip.addEventListener("mousemove", (e) => { if (dragging) overviewAt(e); });
  const release = () => { dragging = false; };
  window.addEventListener("mouseup", release);

  pickerList.addEventListener("change", () => {
    const chosen = [...pickerList.querySelectorAll("input:checked")].map((b) => b.value);
    if (!chosen.length) { fillPicker(ui, model); return; } // at least one channel stays
    model.set("channels", chosen);
    model.save_changes();
  });
  length.addEventListener("change", () => { model.set("page_seconds", Number(length.value)); model.save_changes(); });
  ui.utc.addEventListener("change", () => { model.send({ type: "set", name: "utc", value: ui.utc.checked }); root.focus(); });
  return () => window.removeEventListener("mouseup", release);
}

// The trace area's width in columns goes to the kernel (debounced, but the first at once: the
// first page waits for it when it differs); the page is redrawn to fit, if it does not yet.
function watchSize(ui, model, state, redraw) {
  let timer = 0;
  let first = true;
  const resized = () => {
    clearTimeout(timer);
    const apply = () => {
      const columns = Math.max(50, Math.floor(widthOf(ui.root) - state.gutter));
      if (columns !== model.get("width_px")) model.send({ type: "resize", width: columns });
      if (state.drawnFor !== sizeOf(widthOf(ui.root), state.gutter)) redraw();
    };
    if (first && ui.root.clientWidth > 0) {
      first = false; // laid out: its width is known
      apply();
    } else timer = setTimeout(apply, 80);
  };
  const observer = new ResizeObserver(resized);
  observer.observe(ui.root);
  return { resized, stop: () => { observer.disconnect(); clearTimeout(timer); } };
}

// -- the page and the bar as the model holds them -------------------------------------------

// A trait that holds `{..., data}` (a DataView of float32 values) as {msg, data}; null while empty.
function unpack(value) {
  return value && value.data ? { msg: value, data: floats(value.data) } : null;
}

// -- render -------------------------------------------------------------------------------

function render({ model, el }) {
  const menus = model.get("menus"); // fixed for the widget's life: read once
  const ui = layout(menus);
  el.append(ui.root);
  // reply: the page on screen {msg, data}; overview: the bar {msg, data}; cursor: seconds
  // from the recording start of the last click in the traces; gutter: the labels' width
  const overview = unpack(model.get("overview_bar"));
  const state = { reply: null, drawnId: 0, drawnFor: "", overview, cursor: null, gutter: 0 };
  ui.root.dataset.renderedAt = String(performance.now()); // what tests and benchmarks read
  const draw = () => drawPage(ui, model, state);
  const texts = () => showTexts(ui, model, menus);
  const sizeGutter = () => {
    const gutter = gutterFor(model.get("all_channels"));
    if (gutter === state.gutter) return;
    state.gutter = gutter;
    ui.root.dataset.gutter = String(gutter);
    if (watching) watching.resized();
  };
  let watching = null;

  // the newest page, if it answers the newest request (a reply overtaken by one is stale)
  const showLatest = () => {
    const page = unpack(model.get("reply"));
    if (!page || page.msg.id < model.get("view_id") || page.msg.id <= state.drawnId) return false;
    ui.root.dataset.gotAt = String(performance.now());
    state.reply = page;
    draw();
    model.send({ type: "drawn", id: page.msg.id }); // the kernel's read-ahead waits for it
    ui.root.dataset.pages = String(Number(ui.root.dataset.pages || 0) + 1); // pages drawn (tests, benchmarks)
    return true;
  };
  const newBar = () => {
    state.overview = unpack(model.get("overview_bar"));
    drawOverview(ui, model, state);
  };
  const listeners = [
    ["change:reply", showLatest],
    ["change:overview_bar", newBar],
    ["change:gain", () => { draw(); texts(); }],
    ["change:annotations", draw],
    ["change:marks", draw],
    ["change:bad_rows", draw],
    ["change:bad_channels", texts],
    ["change:note", texts],
    ...menus.map((menu) => [`change:${menu.label_trait || menu.trait}`, texts]),
    ["change:page_label", texts],
    ["change:message", texts],
    ["change:utc", () => { draw(); texts(); }],
    ["change:row_shafts", draw],
    ["change:page_seconds", () => fillLengths(ui, model)],
    ["change:channels", () => { fillPicker(ui, model); texts(); }],
    ["change:all_channels", () => { sizeGutter(); fillPicker(ui, model); }],
    ["change:first_row", texts],
  ];
  for (const [event, listener] of listeners) model.on(event, listener);
  const stopInput = listenToInput(ui, model, state, menus, draw);
  sizeGutter();
  watching = watchSize(ui, model, state, draw);
  fillLengths(ui, model);
  fillPicker(ui, model);
  texts();
  draw();
  showLatest(); // else the page is on its way
  return () => {
    watching.stop();
    stopInput();
    for (const [event, listener] of listeners) model.off(event, listener);
  };
}

export default { render };
