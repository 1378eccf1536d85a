// The page of nmt serve and nmt-runtime serve: translate a sentence with POST /v1/translate, draw the
// chosen hypothesis's attention as an SVG heatmap, and show a clicked piece's nearest embedding rows
// (GET /v1/embeddings/neighbors) in the served table and, where the server has it (a run's "init"),
// the table before training; where the server has a run's embedding snapshots, some words' rows moving
// over the validations (GET /v1/embeddings/snapshots) with a slider. Plain DOM and SVG, no library.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let current = null; // the last response's translation: {text, score, n_best, src_pieces, ...}
let tables = []; // the checkpoints whose neighbours the page shows, from /v1/info: the default, then init
let wordLevel = { src: false, tgt: false }; // from /v1/info: a side whose vocabulary is words shows them without "▁"
let movie = null; // the last /v1/embeddings/snapshots answer, with the box of all its points
let playing = null; // the play button's timer
const colour = (i) => `hsl(${Math.round(i * 137.5) % 360}, 70%, 40%)`; // the golden angle: neighbours differ, any count

// a piece as the page shows it: the word itself in a word vocabulary (the server's Tokenizer.show)
const shownPiece = (piece, side) => (wordLevel[side] && piece.startsWith("\u2581") && piece.length > 1 ? piece.slice(1) : piece);

async function call(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

function element(tag, attributes = {}, text = null) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

async function describe() {
  try {
    const info = await call("/v1/info");
    $("direction").textContent = `${info.languages.src} → ${info.languages.tgt}`;
    $("model").textContent = modelLine(info);
    $("beam").value = info.decode.beam;
    $("beam").max = info.limits.max_beam;
    $("nbest").value = Math.min(3, info.decode.beam);
    $("temperature").value = info.decode.temperature;
    $("strategy").value = info.decode.strategy === "sample" ? "sample" : "beam";
    chooseStrategy();
    neighbourColumns(info.neighbors);
    wordLevel = info.word_level || wordLevel;
    if (info.snapshots) moviePanel(info.languages); // a run that kept snapshots; else no panel
  } catch (e) {
    $("model").textContent = `cannot describe the model: ${e.message}`;
  }
}

// What /v1/info says of the model, in one line; a part the server does not give is left out.
function modelLine(info) {
  const known = (v) => v !== null && v !== undefined;
  const c = info.checkpoint || {};
  const where = [info.run, c.path && c.path.split("/").pop()].filter(Boolean).join(": ");
  const facts = [where, known(c.step) ? `step ${c.step}` : null,
    c.dev_metric ? `dev ${c.dev_metric} ${known(c.dev_score) ? c.dev_score.toFixed(2) : "?"}` : null].filter(Boolean);
  return [facts.join(", "), `vocabulary ${info.vocab.src} / ${info.vocab.tgt}`,
    known(info.parameters) ? `${info.parameters.toLocaleString()} parameters` : null].filter(Boolean).join("; ");
}

// One column of neighbours for the served table (the default checkpoint) and, when the server has
// it, one for the table before training ("init").
function neighbourColumns(neighbors) {
  const before = neighbors.checkpoints.includes("init") && neighbors.default !== "init";
  tables = before ? [neighbors.default, "init"] : [neighbors.default];
  const title = (c) => c === "init" ? "initial (random)" : `trained (${c} checkpoint)`;
  $("nb-columns").replaceChildren(...tables.map((c) => {
    const column = document.createElement("div");
    const h = document.createElement("h3");
    h.textContent = title(c);
    const list = document.createElement("ol");
    list.id = `nb-${c}`;
    list.className = "neighbours";
    column.append(h, list);
    return column;
  }));
  $("nb-about").textContent = "By cosine similarity in the embedding table after training" +
    (before ? ", and in the same table before the first step." : ".");
}

function chooseStrategy() {
  const sample = $("strategy").value === "sample";
  $("beam-field").hidden = sample;
  $("temperature-field").hidden = !sample;
}

async function translate(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) { say("type a sentence first", true); return; }
  const strategy = $("strategy").value, beam = Number($("beam").value);
  // beam search returns at most the beam; sampling draws n-best samples, each from its own seed
  const request = strategy === "sample"
    ? { strategy, n_best: Number($("nbest").value), temperature: Number($("temperature").value) }
    : { strategy, beam, n_best: Math.min(Number($("nbest").value), beam) };
  say("translating…");
  $("go").disabled = true;
  try {
    const t0 = performance.now();
    const body = await call("/v1/translate", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: [text], ...request, attention: true }),
    });
    current = body.translations[0];
    show(0);
    const how = body.strategy === "sample" ? `${body.n_best} samples, temperature ${request.temperature}` : `beam ${body.beam}`;
    say(`${Math.round(performance.now() - t0)} ms (${how})`);
  } catch (e) {
    say(e.message, true);
  } finally {
    $("go").disabled = false;
  }
}

function hypotheses() {
  return current.n_best || [{ text: current.text, score: current.score, tgt_pieces: current.tgt_pieces,
    attention: current.attention }];
}

function show(chosen) {
  const hyps = hypotheses();
  $("result").hidden = false;
  $("translation").textContent = hyps[chosen].text || "(empty)";
  const list = $("hyps");
  list.replaceChildren();
  hyps.forEach((h, i) => {
    const li = document.createElement("li");
    li.textContent = h.text || "(empty)";
    const s = document.createElement("span");
    s.className = "score";
    s.textContent = h.score.toFixed(3);
    li.append(s);
    if (i === chosen) li.className = "chosen";
    li.addEventListener("click", () => show(i));
    list.append(li);
  });
  heatmap(current.src_pieces, hyps[chosen].tgt_pieces, hyps[chosen].attention);
}

function heatmap(srcPieces, tgtPieces, weights) {
  const cols = [...srcPieces, "</s>"], rows = [...tgtPieces, "</s>"];
  const cell = 28, left = 110, top = 90;
  const svg = element("svg", { width: left + cols.length * cell + 90, height: top + rows.length * cell + 10,
    role: "img", "aria-label": "attention heatmap" });
  const label = (text, side, x, y, rotate) => {
    const clickable = text !== "</s>";
    // source labels rise to the right from above their column, clear of the cells
    const t = element("text", { x, y, class: clickable ? "piece" : "eos", "text-anchor": rotate ? "start" : "end",
      transform: rotate ? `rotate(-45 ${x} ${y})` : "" }, clickable ? shownPiece(text, side) : text);
    if (clickable) t.addEventListener("click", () => neighbours(text, side));
    svg.append(t);
  };
  cols.forEach((p, j) => label(p, "src", left + j * cell + cell / 2 - 4, top - 6, true));
  rows.forEach((p, i) => label(p, "tgt", left - 6, top + i * cell + cell / 2 + 4, false));
  rows.forEach((tp, i) => cols.forEach((sp, j) => {
    const w = weights[i][j];
    const rect = element("rect", { x: left + j * cell, y: top + i * cell, width: cell - 1, height: cell - 1,
      class: "cell", fill: `rgba(11, 87, 208, ${Math.max(0.03, w)})`, "data-weight": w });
    rect.append(element("title", {}, `${tp} ← ${sp}: ${w.toFixed(3)}`));
    svg.append(rect);
  }));
  $("heatmap").replaceChildren(svg);
}

async function neighbours(piece, side) {
  $("neighbours").hidden = false;
  $("nb-query").textContent = shownPiece(piece, side);
  $("nb-side").textContent = side === "src" ? "(source table)" : "(target table)";
  for (const checkpoint of tables) {
    const list = $(`nb-${checkpoint}`);
    list.replaceChildren();
    try {
      const q = new URLSearchParams({ piece, side, checkpoint, k: 10 });
      const body = await call(`/v1/embeddings/neighbors?${q}`);
      for (const n of body.neighbors) {
        const li = document.createElement("li");
        li.textContent = n.label ?? n.piece;
        const s = document.createElement("span");
        s.className = "score";
        s.textContent = n.cosine.toFixed(3);
        li.append(s);
        list.append(li);
      }
    } catch (e) {
      const li = document.createElement("li");
      li.className = "error";
      li.textContent = e.message;
      list.append(li);
    }
  }
}

// The rows moving: the panel shows where the chosen words' rows stand at the validation the slider
// picks, their start (before the first step) hollow, their path so far faint. Every frame is drawn in
// the one projection the server used and on axes fitted to all frames' points, so motion is motion.
function moviePanel(languages) {
  $("movie").hidden = false;
  $("mv-side").replaceChildren(...["src", "tgt"].map((side) => {
    const o = document.createElement("option");
    o.value = side;
    o.textContent = `${side} (${languages[side]})`;
    return o;
  }));
  loadMovie();
}

async function loadMovie(event) {
  if (event) event.preventDefault();
  stopPlaying();
  const q = new URLSearchParams({ side: $("mv-side").value });
  const words = $("mv-words").value.trim();
  if (words) q.set("words", words);
  try {
    movie = await call(`/v1/embeddings/snapshots?${q}`);
  } catch (e) {
    movie = null;
    $("mv-chart").replaceChildren();
    $("mv-label").textContent = "";
    $("mv-about").textContent = e.message;
    $("mv-about").className = "error";
    return;
  }
  if (!words) $("mv-words").value = movie.labels.map((l) => l.replace(/\*$/, "")).join(", ");
  const points = [movie.start, ...movie.frames].flat();
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  movie.box = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  $("mv-step").max = movie.steps.length - 1;
  $("mv-step").value = movie.steps.length - 1; // the trained rows first; play runs from the start
  $("mv-about").className = "muted";
  $("mv-about").textContent = `${movie.projection}. ○ a row before the first step, ● at the chosen validation, ` +
    "the line its path so far" + (movie.labels.some((l) => l.endsWith("*")) ? "; word* is the mean of its pieces' rows." : ".");
  drawFrame();
}

function drawFrame() {
  if (!movie) return;
  const k = Number($("mv-step").value), n = movie.steps.length;
  $("mv-label").textContent = `step ${movie.steps[k].toLocaleString("en-US")} — validation ${k + 1} of ${n}`;
  const width = 900, height = 460, pad = 20, right = 80; // room for the labels on the right
  const [x0, x1, y0, y1] = movie.box;
  const scale = Math.min((width - pad - right) / (x1 - x0 || 1), (height - 2 * pad) / (y1 - y0 || 1)); // one scale: no axis stretched
  const left = pad + (width - pad - right - (x1 - x0) * scale) / 2, bottom = height - pad - (height - 2 * pad - (y1 - y0) * scale) / 2;
  const X = (x) => left + (x - x0) * scale, Y = (y) => bottom - (y - y0) * scale; // centred
  const svg = element("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "embedding rows over the validations" });
  svg.append(element("rect", { x: 0.5, y: 0.5, width: width - 1, height: height - 1, class: "frame" }));
  movie.labels.forEach((label, w) => {
    const stroke = colour(w), [sx, sy] = movie.start[w], [cx, cy] = movie.frames[k][w];
    const trail = [movie.start[w], ...movie.frames.slice(0, k + 1).map((f) => f[w])];
    svg.append(element("polyline", { points: trail.map(([x, y]) => `${X(x)},${Y(y)}`).join(" "), class: "path", stroke }));
    svg.append(element("circle", { cx: X(sx), cy: Y(sy), r: 5, class: "start", stroke }));
    svg.append(element("circle", { cx: X(cx), cy: Y(cy), r: 4, class: "dot", fill: stroke, "data-word": label }));
    svg.append(element("text", { x: X(cx) + 6, y: Y(cy) - 6, fill: stroke }, label));
  });
  $("mv-chart").replaceChildren(svg);
}

function play() {
  if (playing || !movie) { stopPlaying(); return; }
  const slider = $("mv-step");
  if (Number(slider.value) >= Number(slider.max)) { slider.value = 0; drawFrame(); }
  $("mv-play").textContent = "❚❚ pause";
  playing = setInterval(() => {
    if (Number(slider.value) >= Number(slider.max)) { stopPlaying(); return; }
    slider.value = Number(slider.value) + 1;
    drawFrame();
  }, 700);
}

function stopPlaying() {
  clearInterval(playing);
  playing = null;
  $("mv-play").textContent = "▶ play";
}

$("mv-form").addEventListener("submit", loadMovie);
$("mv-side").addEventListener("change", () => { $("mv-words").value = ""; loadMovie(); }); // the other language's words
$("mv-step").addEventListener("input", () => { stopPlaying(); drawFrame(); });
$("mv-play").addEventListener("click", play);
$("form").addEventListener("submit", translate);
$("strategy").addEventListener("change", chooseStrategy);
$("text").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
describe();
