// The slt-jax attention viewer: draws the page's embedded data (slt_jax/analysis/viewer.py).
// window.viewer holds the state and what each strip shows (tests read it), and selects things.
(() => {
  "use strict";
  const DATA = JSON.parse(document.getElementById("viewer-data").textContent);
  const $ = (id) => document.getElementById(id);
  const COLOURS = { body: "#555", face: "#999", left_hand: "#1f77b4", right_hand: "#d62728" };
  const SPAN_FILL = ["#dbe7f6", "#f6e3c9"];
  const MAGMA = [[0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122], [229, 80, 100],
    [251, 135, 97], [254, 194, 135], [252, 253, 191]];

  const METHOD_NAMES = { gradient_x_input: "gradient × input", integrated_gradients: "integrated gradients",
    rollout: "rollout" };
  const PART_NAMES = { body: "body", face: "face", left_hand: "left hand", right_hand: "right hand" };

  // attribution: per method, the chosen token's values over the frames; parts: its part shares (null: none).
  const state = { sample: 0, step: 0, head: "mean", frame: 0, playing: false, cross: [], encoder: [],
    attribution: {}, parts: {} };

  function magma(t) {
    const x = Math.min(Math.max(t, 0), 1) * (MAGMA.length - 1), i = Math.min(Math.floor(x), MAGMA.length - 2);
    const w = x - i, [a, b] = [MAGMA[i], MAGMA[i + 1]];
    return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * w)).join(",")})`;
  }

  function minMax(values, masked) {  // colour scale of a strip: its real frames' min to max, as the paper's
    const real = values.filter((_, t) => !masked.has(t)), lo = Math.min(...real), hi = Math.max(...real);
    return (v) => (hi > lo ? (v - lo) / (hi - lo) : 0);
  }

  const sample = () => DATA.samples[state.sample];
  const pct = (x) => `${Math.round(100 * x)}%`;

  // --- values: what the page stores, back to attention weights --------------------------------
  function crossValues(s, step, head) {
    const rows = s.cross[step], scale = s.cross_scale[step] / 1000;
    if (head !== "mean") return rows[head].map((q) => q * scale);
    return rows[0].map((_, t) => rows.reduce((sum, row) => sum + row[t], 0) * scale / rows.length);
  }
  const encoderValues = (s, frame) => s.encoder[frame].map((q) => q * s.encoder_scale[frame] / 1000);
  const attributionValues = (a, step) => a.frames[step].map((q) => q * a.scale[step] / 1000);
  const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);
  // s.spans: per reference token, [start, end, gloss] of its sign or null (a word without one).
  const spanAt = (s, frame) => s.spans.findIndex((span) => span && frame >= span[0] && frame < span[1]);
  const hasSpans = (s) => s.spans.some(Boolean);

  // --- canvases ---------------------------------------------------------------------------------
  function fit(canvas) {  // backing store at the device's resolution, drawing in CSS pixels
    const ratio = window.devicePixelRatio || 1, w = canvas.clientWidth, h = Number(canvas.dataset.h);
    canvas.style.height = `${h}px`;
    canvas.width = Math.max(1, Math.round(w * ratio));
    canvas.height = Math.round(h * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return [ctx, w, h];
  }

  function hatch(ctx, x, y, w, h) {
    ctx.fillStyle = "#eee";
    ctx.fillRect(x, y, w, h);
    ctx.strokeStyle = "#bbb";
    ctx.beginPath();
    for (let k = -h; k < w; k += 4) { ctx.moveTo(x + k, y + h); ctx.lineTo(x + k + h, y); }
    ctx.save(); ctx.rect(x, y, w, h); ctx.clip(); ctx.stroke(); ctx.restore();
  }

  function cursor(ctx, n, w, h) {
    const cell = w / n, x = state.frame * cell;
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.strokeRect(x + 1, 1, Math.max(cell - 2, 1), h - 2);
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 1; ctx.strokeRect(x + 2.5, 2.5, Math.max(cell - 5, 0.5), h - 5);
  }

  function drawStrip(canvas, values, masked) {
    const [ctx, w, h] = fit(canvas), n = values.length, cell = w / n, shade = minMax(values, masked);
    values.forEach((v, t) => {
      if (masked.has(t)) return hatch(ctx, t * cell, 0, cell + 0.5, h);
      ctx.fillStyle = magma(shade(v));
      ctx.fillRect(t * cell, 0, cell + 0.5, h);
    });
    cursor(ctx, n, w, h);
    canvas.dataset.values = JSON.stringify(values.map((v) => Number(v.toFixed(6))));
  }

  function drawSpans(canvas, s) {
    const [ctx, w, h] = fit(canvas), n = s.frames.length, cell = w / n;
    ctx.fillStyle = "#f7f7f7"; ctx.fillRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    const mine = s.tokens[state.step] === s.target[state.step] ? state.step : -1;
    const draw = ([a, b, gloss], i) => {
      ctx.fillStyle = i === mine ? "#1f4e9c" : SPAN_FILL[i % 2];
      ctx.fillRect(a * cell, 2, Math.max((b - a) * cell, 1), h - 4);
      ctx.fillStyle = i === mine ? "#fff" : "#333";
      if (ctx.measureText(gloss).width < (b - a) * cell - 2) ctx.fillText(gloss, (a + b) / 2 * cell, h / 2);
    };
    // The chosen token's sign last: another word of the same gloss shares its span.
    s.spans.forEach((span, i) => { if (span && i !== mine) draw(span, i); });
    if (s.spans[mine]) draw(s.spans[mine], mine);
    if (!hasSpans(s)) { ctx.fillStyle = "#888"; ctx.textAlign = "left"; ctx.fillText("no sign spans for this target", 4, h / 2); }
    ctx.fillStyle = "#000"; ctx.fillRect((state.frame + 0.5) * cell - 1, 0, 2, h);
  }

  function drawOverview(canvas, s) {
    const n = s.frames.length, steps = s.tokens.length;
    canvas.dataset.h = String(Math.max(24, Math.min(12 * steps, 160)));
    const [ctx, w, h] = fit(canvas), cell = w / n, row = h / steps;
    const masked = new Set(s.masked);
    for (let k = 0; k < steps; k++) {
      const values = crossValues(s, k, state.head), shade = minMax(values, masked);
      values.forEach((v, t) => {
        if (masked.has(t)) return hatch(ctx, t * cell, k * row, cell + 0.5, row + 0.5);
        ctx.fillStyle = magma(shade(v)); ctx.fillRect(t * cell, k * row, cell + 0.5, row + 0.5);
      });
    }
    ctx.strokeStyle = "#38c"; ctx.lineWidth = 2; ctx.strokeRect(1, state.step * row + 1, w - 2, row - 2);
    ctx.fillStyle = "#fff"; ctx.fillRect((state.frame + 0.5) * cell - 0.5, 0, 1, h);
  }

  // --- the signer -------------------------------------------------------------------------------
  function bounds(s) {
    if (s._bounds) return s._bounds;
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const part of Object.keys(s.pose)) {
      for (const flat of s.pose[part]) {
        if (!flat) continue;
        for (let i = 0; i < flat.length; i += 2) {
          if (flat[i] === null || flat[i + 1] === null) continue;
          const x = flat[i] * DATA.aspect, y = flat[i + 1];
          x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
        }
      }
    }
    if (!isFinite(x0)) [x0, y0, x1, y1] = [0, 0, 1000 * DATA.aspect, 1000];
    s._bounds = [x0, y0, x1, y1];
    return s._bounds;
  }

  function drawPose() {
    const s = sample(), canvas = $("pose"), ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
    ctx.clearRect(0, 0, W, H);
    const [x0, y0, x1, y1] = bounds(s), pad = 14;
    const k = Math.min((W - 2 * pad) / Math.max(x1 - x0, 1), (H - 2 * pad) / Math.max(y1 - y0, 1));
    const ox = (W - k * (x1 - x0)) / 2, oy = (H - k * (y1 - y0)) / 2;
    const at = (flat, i) => (flat[2 * i] === null || flat[2 * i + 1] === null ? null
      : [ox + (flat[2 * i] * DATA.aspect - x0) * k, oy + (flat[2 * i + 1] - y0) * k]);
    const lines = (flat, edges, colour, width) => {
      ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.lineCap = "round"; ctx.beginPath();
      for (const [a, b] of edges) {
        const p = at(flat, a), q = at(flat, b);
        if (p && q) { ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); }
      }
      ctx.stroke();
    };
    const f = state.frame, body = s.pose.body[f], face = s.pose.face[f];
    if (face) lines(face, DATA.edges.face, COLOURS.face, 1);
    if (body) lines(body, DATA.edges.body, COLOURS.body, 3);
    for (const part of ["left_hand", "right_hand"]) {
      const hand = s.pose[part][f];
      if (hand) { lines(hand, DATA.edges.hand, COLOURS[part], 1.5); continue; }
      const wrist = body && at(body, DATA.wrists[part]);
      if (wrist) {  // an undetected hand: a small cross at the body's wrist
        ctx.strokeStyle = COLOURS[part]; ctx.globalAlpha = 0.6; ctx.lineWidth = 1.5; ctx.beginPath();
        ctx.moveTo(wrist[0] - 4, wrist[1] - 4); ctx.lineTo(wrist[0] + 4, wrist[1] + 4);
        ctx.moveTo(wrist[0] + 4, wrist[1] - 4); ctx.lineTo(wrist[0] - 4, wrist[1] + 4);
        ctx.stroke(); ctx.globalAlpha = 1;
      }
    }
    if (!body && !face && !s.pose.left_hand[f] && !s.pose.right_hand[f]) {
      ctx.fillStyle = "#999"; ctx.font = "13px system-ui, sans-serif"; ctx.textAlign = "center";
      ctx.fillText("no keypoints in this frame", W / 2, H / 2);
    }
    // The frame border glows with the chosen token's attention to this frame.
    canvas.style.borderColor = magma(minMax(state.cross, new Set(s.masked))(state.cross[f]));
    const span = spanAt(s, f);
    $("pose-caption").textContent = span >= 0 ? `signing ${s.spans[span][2]}` : (hasSpans(s) ? "between signs" : "");
  }

  // --- panels -----------------------------------------------------------------------------------
  const unscored = (s) => s.reference === null;  // a clip translated without a reference (slt-jax translate)

  function stepInfo() {
    const s = sample(), k = state.step, token = s.tokens[k], peak = argmax(state.cross);
    const ok = token === s.target[k], span = s.spans[k];
    const where = (t) => (span && ok ? ` (${t >= span[0] && t < span[1] ? "inside" : "outside"} its sign)` : "");
    const inside = where(peak);
    const relevant = DATA.methods.map((m) => {
      const top = argmax(state.attribution[m]);
      return `${METHOD_NAMES[m]} ${top}${where(top)}`;
    }).join("; ");
    const fed = ["&lt;bos&gt;", ...s.tokens.slice(0, k).map(esc)];
    const self = s.self[k].map((q, i) => `${fed[i]} ${Math.round(q / 10)}%`).join(", ");
    const share = s.share[k], encPeak = argmax(state.encoder);
    const head = state.head === "mean" ? "heads averaged" : `head ${state.head + 1}`;
    $("step-info").innerHTML = `
      <div><b>step ${k + 1} of ${s.tokens.length}: ${esc(token)}</b> (p = ${s.prob[k].toFixed(3)});
        ${unscored(s) ? "" : `reference here: ${esc(s.target[k] ?? "–")} <span class="${ok ? "ok" : "bad"}">${ok ? "&#10003;" : "&#10007;"}</span>`}</div>
      <table>
        <tr><td>most attended frame</td><td>${peak} (video frame ${s.frames[peak]})${inside}, ${head}</td></tr>
        <tr><td>most relevant frame</td><td>${relevant}</td></tr>
        <tr><td>self vs cross share</td><td><div class="sharebar" title="||self|| / (||self|| + ||cross||) of the newest position">
          <div class="self" style="width:${pct(share)}"></div><div class="cross" style="width:${pct(1 - share)}"></div></div>
          self ${pct(share)} &middot; cross ${pct(1 - share)}</td></tr>
        <tr><td>self-attention to</td><td>${self}</td></tr>
        <tr><td>frame ${state.frame} attends to</td><td>frame ${encPeak} most (encoder, heads averaged)</td></tr>
      </table>`;
    $("cross-label").textContent = `cross-attn: ${token}`;
    $("encoder-label").textContent = `encoder, frame ${state.frame}`;
  }

  function drawParts() {  // per gradient method, one bar per body part: its share of the token's attribution
    $("parts").innerHTML = DATA.methods.filter((m) => state.parts[m]).map((m) => `
      <div class="parts-group" data-method="${m}"><div class="title">${METHOD_NAMES[m]}</div>
      ${DATA.parts.map((part, p) => `<div class="part" data-part="${part}" data-value="${state.parts[m][p]}">
        <span class="name">${PART_NAMES[part]}</span><span class="track"><span class="fill"
        style="width:${pct(state.parts[m][p])};background:${COLOURS[part]}"></span></span>
        <span class="pct">${pct(state.parts[m][p])}</span></div>`).join("")}</div>`).join("");
  }

  function esc(text) {
    return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  }

  function frameLabel() {
    const s = sample(), f = state.frame, seconds = s.frames[f] / DATA.fps;
    $("frame-label").textContent = `frame ${f} (0–${s.frames.length - 1}) · video frame ${s.frames[f]} · ${seconds.toFixed(2)} s`;
    $("scrubber").value = String(f);
  }

  function redraw() {
    const s = sample(), masked = new Set(s.masked);
    state.cross = crossValues(s, state.step, state.head);
    state.encoder = encoderValues(s, state.frame);
    for (const m of DATA.methods) {
      state.attribution[m] = attributionValues(s.attribution[m], state.step);
      state.parts[m] = s.attribution[m].parts && s.attribution[m].parts[state.step];
    }
    drawStrip($("cross-strip"), state.cross, masked);
    DATA.methods.forEach((m) => drawStrip($(`attr-${m}`), state.attribution[m], masked));
    drawParts();
    drawStrip($("encoder-strip"), state.encoder, masked);
    drawSpans($("spans-strip"), s);
    drawOverview($("overview"), s);
    drawPose();
    stepInfo();
    frameLabel();
    document.querySelectorAll("#tokens button").forEach((b) => b.classList.toggle("selected", Number(b.dataset.step) === state.step));
  }

  // --- selection --------------------------------------------------------------------------------
  function selectSample(i) {
    state.sample = i; state.step = 0; state.frame = 0;
    const s = sample();
    document.querySelectorAll("#samples tr").forEach((tr) => {
      tr.classList.toggle("selected", Number(tr.dataset.index) === i);
      if (Number(tr.dataset.index) === i) tr.scrollIntoView({ block: "nearest" });
    });
    $("sample-head").innerHTML = `<span class="id">${esc(s.id)}</span>
      ${unscored(s) ? "<br>" : `<span class="${s.correct ? "ok" : "bad"}">${s.correct ? "&#10003; correct" : "&#10007; wrong"}</span><br>
      reference: <b>${esc(s.reference)}</b><br>`}hypothesis: <b>${esc(s.hypothesis)}</b>`;
    $("tokens").innerHTML = s.tokens.map((t, k) => `<button type="button" data-step="${k}"
      class="${t === s.target[k] || unscored(s) ? "" : "wrong"}" title="p = ${s.prob[k].toFixed(3)}, self share ${pct(s.share[k])}">
      ${esc(t)}<span class="mini"><span class="self" style="width:${pct(s.share[k])}"></span>
      <span class="cross" style="width:${pct(1 - s.share[k])}"></span></span></button>`).join("");
    $("scrubber").max = String(s.frames.length - 1);
    redraw();
  }
  function selectStep(k) { state.step = Math.min(Math.max(k, 0), sample().tokens.length - 1); redraw(); }
  function setHead(h) { state.head = h === "mean" ? "mean" : Number(h); $("head").value = String(h); redraw(); }
  function setFrame(f) {
    state.frame = Math.min(Math.max(Math.round(f), 0), sample().frames.length - 1);
    redraw();
  }

  let last = 0;
  function tick(now) {
    if (!state.playing) return;
    const wait = 1000 * DATA.sample_rate / (DATA.fps * Number($("speed").value));  // the video's own pace
    if (now - last >= wait) { last = now; setFrame((state.frame + 1) % sample().frames.length); }
    requestAnimationFrame(tick);
  }
  function play() { state.playing = true; $("play").innerHTML = "&#10074;&#10074; pause"; last = 0; requestAnimationFrame(tick); }
  function pause() { state.playing = false; $("play").innerHTML = "&#9654; play"; }

  // --- the picker -------------------------------------------------------------------------------
  function fillList() {
    const which = $("filter").value, needle = $("search").value.trim().toLowerCase();
    $("samples").tBodies[0].innerHTML = DATA.samples.map((s, i) => {
      if ((which === "correct" && !s.correct) || (which === "wrong" && s.correct !== false)) return "";
      if (needle && !`${s.id} ${s.reference ?? ""} ${s.hypothesis}`.toLowerCase().includes(needle)) return "";
      return `<tr data-index="${i}" class="${i === state.sample ? "selected" : ""}">
        <td class="mark ${s.correct ? "ok" : "bad"}">${unscored(s) ? "" : s.correct ? "&#10003;" : "&#10007;"}</td>
        <td><div class="sid">${esc(s.id)}</div>${esc(s.reference ?? "")}${s.correct ? "" : `<div class="hyp">&rarr; ${esc(s.hypothesis)}</div>`}</td></tr>`;
    }).join("");
  }

  function frameFromEvent(canvas, event) {
    const box = canvas.getBoundingClientRect();
    return Math.floor((event.clientX - box.left) / box.width * sample().frames.length);
  }

  function init() {
    const correct = DATA.samples.filter((s) => s.correct).length;
    $("meta").textContent = `${DATA.config}, ${DATA.run} (epoch ${DATA.epoch}), ` +
      (DATA.samples.every(unscored) ? `${DATA.samples.length} clips without a reference` :
        `${DATA.split} split: ${DATA.samples.length} samples, ${correct} translated exactly`) + `; greedy decoding recorded in ${DATA.mode} mode; ` +
      `${DATA.sample_rate === 1 ? "every frame" : `1 frame in ${DATA.sample_rate}`} shown, as the model saw them.`;
    $("attribution-strips").innerHTML = DATA.methods.map((m) => `<div class="strip">
      <span class="label">${METHOD_NAMES[m]}</span><canvas id="attr-${m}" data-h="30"></canvas></div>`).join("");
    $("head").innerHTML = `<option value="mean">averaged</option>` +
      Array.from({ length: DATA.heads }, (_, h) => `<option value="${h}">head ${h + 1}</option>`).join("");
    fillList();
    $("filter").addEventListener("change", fillList);
    $("search").addEventListener("input", fillList);
    $("samples").addEventListener("click", (e) => { const tr = e.target.closest("tr"); if (tr) selectSample(Number(tr.dataset.index)); });
    $("tokens").addEventListener("click", (e) => { const b = e.target.closest("button"); if (b) selectStep(Number(b.dataset.step)); });
    $("head").addEventListener("change", (e) => setHead(e.target.value));
    $("scrubber").addEventListener("input", (e) => setFrame(Number(e.target.value)));
    $("play").addEventListener("click", () => (state.playing ? pause() : play()));
    for (const id of ["spans-strip", "cross-strip", "encoder-strip", ...DATA.methods.map((m) => `attr-${m}`)]) {
      const canvas = $(id);
      const move = (e) => { if (e.buttons === 1 || e.type === "mousedown") setFrame(frameFromEvent(canvas, e)); };
      canvas.addEventListener("mousedown", move);
      canvas.addEventListener("mousemove", move);
      canvas.addEventListener("mousemove", (e) => {  // name what is under the pointer
        const s = sample(), t = Math.min(frameFromEvent(canvas, e), s.frames.length - 1), span = spanAt(s, t);
        const method = id.startsWith("attr-") ? id.slice(5) : null;
        const value = id === "cross-strip" ? state.cross[t] : id === "encoder-strip" ? state.encoder[t]
          : method ? state.attribution[method][t] : null;
        canvas.title = `frame ${t}` + (span >= 0 ? `, ${s.spans[span][2]}` : "") + (value === null ? "" : `: ${value.toFixed(4)}`);
      });
    }
    $("overview").addEventListener("mousedown", (e) => {
      const box = e.target.getBoundingClientRect();
      state.frame = Math.min(frameFromEvent(e.target, e), sample().frames.length - 1);
      selectStep(Math.floor((e.clientY - box.top) / box.height * sample().tokens.length));
    });
    document.addEventListener("keydown", (e) => {
      if (e.target.matches("input[type=search], select")) return;
      if (e.key === " ") { e.preventDefault(); state.playing ? pause() : play(); }
      else if (e.target.id !== "scrubber" && e.key === "ArrowRight") setFrame(state.frame + 1);
      else if (e.target.id !== "scrubber" && e.key === "ArrowLeft") setFrame(state.frame - 1);
      else if (e.key === "ArrowDown") { e.preventDefault(); selectStep(state.step + 1); }
      else if (e.key === "ArrowUp") { e.preventDefault(); selectStep(state.step - 1); }
    });
    window.addEventListener("resize", redraw);
    // A link may name a sample, step and frame: viewer.html#sample=ID&step=2&frame=10
    const wanted = new URLSearchParams(location.hash.slice(1));
    const named = DATA.samples.findIndex((s) => s.id === wanted.get("sample"));
    selectSample(named >= 0 ? named : 0);
    if (wanted.has("head")) setHead(wanted.get("head"));
    if (wanted.has("step")) selectStep(Number(wanted.get("step")));
    if (wanted.has("frame")) setFrame(Number(wanted.get("frame")));
  }

  window.viewer = Object.assign(state, { data: DATA, selectSample, selectStep, setHead, setFrame, play, pause });
  if (DATA.samples.length) init();
  else $("stage").textContent = "This split has no samples.";
})();
