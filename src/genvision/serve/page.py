"""The demo's one page: static HTML, CSS and JavaScript, no external asset (it works
offline and loads nothing from another site). The page asks ``/api/runs`` what each run
offers and draws its controls from that description; every button posts JSON to an
``/api/ACTION`` route and shows the returned image, or the one-line error in red.

Element ids the browser tests rely on: ``r{ID}-sample`` (button), ``r{ID}-sample-out``
(image), ``r{ID}-apply-file`` (file input), ``r{ID}-apply`` (button), ``r{ID}-apply-out``
(image), ``r{ID}-error`` (the error line).
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>genvision demo</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px} header p{margin:2px 0 0;color:#b8c0d0;font-size:13px}
main{padding:16px 24px;display:flex;flex-direction:column;gap:18px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:14px 18px}
.card h2{margin:0;font-size:18px} .sub{color:#5a6478;font-size:13px;margin-bottom:8px}
.row{display:flex;flex-wrap:wrap;gap:10px 16px;align-items:end;margin:6px 0}
label{display:flex;flex-direction:column;font-size:12px;color:#5a6478}
label.check{flex-direction:row;align-items:center;gap:4px}
input[type=number]{width:90px} select,input{font:inherit;padding:2px 4px}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px}
.panel{border:1px solid #dde1e8;border-radius:6px;padding:10px 12px}
.panel h3{margin:0 0 4px;font-size:15px}
button{font:inherit;background:#2f6fde;color:#fff;border:0;border-radius:5px;
 padding:5px 14px;cursor:pointer} button:disabled{background:#8aa6d8;cursor:wait}
button.plain{background:#e6e9ef;color:#1d2330}
img.out{display:block;max-width:100%;margin-top:8px;image-rendering:pixelated;
 background:#eef0f4;min-height:40px}
img.grid{width:100%;max-width:360px} img.strip{width:100%}
img.out:not([src]){display:none}
.caption{font-size:12px;color:#5a6478} .note{font-size:12px;color:#8a5a00}
.error{color:#c0192c;font-weight:600;min-height:1.2em;margin-top:4px}
.pad{position:relative;display:inline-block;touch-action:none}
.pad canvas{display:block;border:1px solid #99a;cursor:crosshair;background:#000}
.guide{position:absolute;left:0;right:0;border-top:2px dashed #ff3b5c;pointer-events:none}
</style></head><body>
<header><h1>genvision demo</h1>
<p>Sample, interpolate and complete with generative models; super-resolve, colorize and
translate images. Everything runs on this machine.</p></header>
<main id="runs"><p>Loading the runs…</p></main>
<script>
"use strict";
const $ = (tag, attrs = {}, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") el.textContent = v; else if (k.startsWith("on")) el[k] = v;
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v);
  }
  for (const kid of kids) if (kid) el.append(kid);
  return el;
};
const field = (text, input) => $("label", {}, text, input);
const num = (id, value, min, max) =>
  $("input", {type: "number", id, value, min, max, step: 1});

async function post(action, body, run, out, button) {
  const err = document.getElementById(`r${run.id}-error`);
  err.textContent = ""; button.disabled = true;
  try {
    const resp = await fetch(`/api/${action}`, {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({run: run.id, ...body})});
    let data;
    try { data = await resp.json(); }
    catch (e) { throw new Error(`the server answered ${resp.status} without JSON`); }
    if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
    out.img.src = data.image;
    out.caption.textContent = data.caption || "";
    out.note.textContent = data.note ? "note: " + data.note : "";
    return data;
  } catch (e) {
    err.textContent = "error: " + e.message;
    out.img.removeAttribute("src");  // no stale output beside an error
    out.caption.textContent = out.note.textContent = "";
  } finally { button.disabled = false; }
}

function output(id, kind = "") {
  return {img: $("img", {class: `out ${kind}`, id, alt: "output"}),
          caption: $("div", {class: "caption"}), note: $("div", {class: "note"})};
}
const outNodes = (o) => [o.img, o.caption, o.note];
// small task images (a 28x28 digit) are shown enlarged, pixel for pixel
function enlargeSmall(img) {
  img.onload = () => { const k = img.naturalWidth < 80 ? Math.ceil(160 / img.naturalWidth) : 1;
    img.style.width = k > 1 ? `${img.naturalWidth * k}px` : ""; };
  img.onerror = () => img.removeAttribute("src");
}

// ----- sampler options, drawn from the model's own description --------------------------
function samplerControls(run) {
  const box = $("div", {class: "row"});
  const opts = $("span", {class: "row"});
  let select = null;
  const draw = () => {
    const s = run.samplers.find((x) => x.name === (select ? select.value : run.samplers[0].name));
    opts.replaceChildren();
    for (const o of s.options) {
      const id = `r${run.id}-opt-${o.name}`;
      let input;
      if (o.type === "bool") {
        input = $("input", {type: "checkbox", id, checked: o.default ? "" : null});
        opts.append($("label", {class: "check"}, input, o.name));
        continue;
      }
      if (o.type === "choice") {
        input = $("select", {id});
        for (const c of o.choices) input.append($("option", {value: c, text: c}));
        input.value = o.default;
      } else {
        input = $("input", {type: o.type === "str" ? "text" : "number", id,
          step: o.type === "int" ? 1 : "any", value: o.default ?? "",
          placeholder: o.nullable ? "default" : null});
      }
      input.dataset.kind = o.type;
      opts.append(field(o.name, input));
    }
  };
  if (run.samplers.length > 1) {
    select = $("select", {id: `r${run.id}-sampler`, onchange: draw});
    for (const s of run.samplers) select.append($("option", {value: s.name, text: s.name}));
    box.append(field("sampler", select));
  }
  box.append(opts);
  draw();
  const values = () => {
    const options = {};
    for (const el of opts.querySelectorAll("input,select")) {
      const name = el.id.split("-opt-")[1];
      if (el.type === "checkbox") options[name] = el.checked;
      else if (el.value === "") continue;
      else if (el.dataset.kind === "int") options[name] = parseInt(el.value, 10);
      else if (el.dataset.kind === "float") options[name] = parseFloat(el.value);
      else options[name] = el.value;
    }
    return {sampler: select ? select.value : null, options};
  };
  return {node: box, values};
}

function labelControl(run) {
  const k = run.num_classes;
  if (!k) return {node: null, value: () => null};
  const sel = $("select", {id: `r${run.id}-label`});
  sel.append($("option", {value: "", text: "every class in turn"}));
  for (let i = 0; i < k; i++) sel.append($("option", {value: i, text: i}));
  return {node: field("label", sel), value: () => sel.value === "" ? null : parseInt(sel.value)};
}

// ----- panels of a model run ---------------------------------------------------------------
function samplePanel(run, common) {
  const n = num(`r${run.id}-n`, 16, 1, 64), seed = num(`r${run.id}-seed`, 0, 0);
  const next = $("input", {type: "checkbox", checked: ""});
  const out = output(`r${run.id}-sample-out`, "grid");
  const btn = $("button", {id: `r${run.id}-sample`, text: "Sample"});
  btn.onclick = async () => {
    const data = await post("sample", {n: +n.value, seed: +seed.value, ...common()},
                            run, out, btn);
    if (data && next.checked) seed.value = +seed.value + +n.value;
  };
  return $("div", {class: "panel"}, $("h3", {text: "Sample"}),
    $("div", {class: "row"}, field("images", n), field("seed", seed),
      $("label", {class: "check"}, next, "new seeds each click"), btn), ...outNodes(out));
}

function interpolatePanel(run, common) {
  const a = num(`r${run.id}-seed-a`, 0, 0), b = num(`r${run.id}-seed-b`, 1, 0);
  const frames = num(`r${run.id}-frames`, 8, 2, 16);
  const out = output(`r${run.id}-interpolate-out`, "strip");
  const btn = $("button", {id: `r${run.id}-interpolate`, text: "Interpolate"});
  btn.onclick = () => post("interpolate", {seed_a: +a.value, seed_b: +b.value,
    frames: +frames.value, ...common()}, run, out, btn);
  return $("div", {class: "panel"}, $("h3", {text: "Interpolate between two samples"}),
    $("div", {class: "row"}, field("seed A", a), field("seed B", b),
      field("frames", frames), btn), ...outNodes(out));
}

function completePanel(run, common) {
  const [c, h, w] = run.shape;
  const side = 224, cw = Math.round(side * Math.max(1, w / h)),
        ch = Math.round(side * Math.max(1, h / w));
  const canvas = $("canvas", {id: `r${run.id}-canvas`, width: cw, height: ch});
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cw, ch); };
  clear();
  const pen = $("input", {type: "color", value: "#ffffff"});
  let last = null;
  const at = (e) => { const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * cw / r.width, (e.clientY - r.top) * ch / r.height]; };
  canvas.onpointerdown = (e) => { last = at(e); canvas.setPointerCapture(e.pointerId); };
  canvas.onpointerup = () => { last = null; };
  canvas.onpointermove = (e) => {
    if (!last) return;
    const p = at(e);
    ctx.strokeStyle = c === 1 ? "#fff" : pen.value; ctx.lineCap = "round";
    ctx.lineWidth = 2.2 * cw / w;
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke(); last = p;
  };
  const keep = num(`r${run.id}-keep`, Math.floor(h / 2), 0, h - 1);
  const guide = $("div", {class: "guide"});
  const place = () => { guide.style.top = `${100 * (+keep.value) / h}%`; };
  keep.oninput = place; place();
  const file = $("input", {type: "file", accept: "image/*", id: `r${run.id}-complete-file`});
  file.onchange = () => {
    const f = file.files[0]; if (!f) return;
    const img = new Image();
    img.onload = () => { clear(); ctx.drawImage(img, 0, 0, cw, ch); };
    img.onerror = () => { document.getElementById(`r${run.id}-error`).textContent =
      `error: ${f.name} is not an image the browser can read (fix: pick a PNG or JPEG)`; };
    img.src = URL.createObjectURL(f);
  };
  const n = num(`r${run.id}-complete-n`, 8, 1, 64), seed = num(`r${run.id}-complete-seed`, 0, 0);
  const out = output(`r${run.id}-complete-out`, "strip");
  const btn = $("button", {id: `r${run.id}-complete`, text: "Complete"});
  btn.onclick = () => {
    const small = $("canvas", {width: w, height: h});
    small.getContext("2d").drawImage(canvas, 0, 0, w, h);
    post("complete", {image: small.toDataURL("image/png"), keep_rows: +keep.value,
      n: +n.value, seed: +seed.value, ...common()}, run, out, btn);
  };
  return $("div", {class: "panel"}, $("h3", {text: "Complete a drawing or an image"}),
    $("div", {class: "sub", text: "Draw (or load an image) above the dashed line: rows " +
      "above it are kept, the model fills in the rest."}),
    $("div", {class: "pad"}, canvas, guide),
    $("div", {class: "row"}, c === 3 ? field("pen", pen) : null, field("image file", file),
      $("button", {class: "plain", text: "Clear", onclick: clear})),
    $("div", {class: "row"}, field("rows kept", keep), field("completions", n),
      field("seed", seed), btn), ...outNodes(out));
}

// ----- a task run ---------------------------------------------------------------------------
function taskPanel(run) {
  const method = $("select", {id: `r${run.id}-method`});
  for (const m of run.methods) method.append($("option", {value: m, text: m}));
  let direction = null;
  if (run.kind === "translate") {
    direction = $("select", {id: `r${run.id}-direction`});
    for (const d of ["a2b", "b2a"]) direction.append($("option", {value: d, text: d}));
  }
  const file = $("input", {type: "file", accept: "image/*", id: `r${run.id}-apply-file`});
  const input = $("img", {class: "out", id: `r${run.id}-apply-in`, alt: "input"});
  const out = output(`r${run.id}-apply-out`);
  enlargeSmall(input); enlargeSmall(out.img);
  const verb = run.verb[0].toUpperCase() + run.verb.slice(1);
  const btn = $("button", {id: `r${run.id}-apply`, text: verb});
  btn.onclick = () => {
    const f = file.files[0];
    if (!f) { document.getElementById(`r${run.id}-error`).textContent =
      "error: no image chosen (fix: pick an image file first)"; return; }
    const reader = new FileReader();
    reader.onload = () => {
      input.src = reader.result;
      post("apply", {image: reader.result, method: method.value,
        direction: direction ? direction.value : null}, run, out, btn);
    };
    reader.readAsDataURL(f);
  };
  return $("div", {class: "panel"}, $("h3", {text: `${verb} an image`}),
    $("div", {class: "row"}, field("method", method), direction && field("direction", direction),
      field("image file", file), btn),
    $("div", {class: "panels"}, $("div", {}, $("div", {class: "caption", text: "input"}), input),
      $("div", {}, ...outNodes(out))));
}

function card(run) {
  const error = $("div", {class: "error", id: `r${run.id}-error`, role: "status"});
  if (run.kind !== "model") {
    const extra = run.scale ? ` · x${run.scale}` : "";
    return $("section", {class: "card", id: `run-${run.id}`}, $("h2", {text: run.name}),
      $("div", {class: "sub", text: `${run.kind} run · ${run.methods.join(", ")}${extra}`}),
      error, taskPanel(run));
  }
  const sampler = samplerControls(run), label = labelControl(run);
  const common = () => ({label: label.value(), ...sampler.values()});
  const [c, h, w] = run.shape;
  return $("section", {class: "card", id: `run-${run.id}`}, $("h2", {text: run.name}),
    $("div", {class: "sub", text: `${run.model} · ${run.family} · ${c}x${h}x${w} ` +
      `${run.data_kind}` + (run.num_classes ? ` · ${run.num_classes} classes` : "")}),
    $("div", {class: "row"}, label.node, sampler.node), error,
    $("div", {class: "panels"}, samplePanel(run, common),
      run.interpolate && interpolatePanel(run, common),
      run.complete && completePanel(run, common)));
}

fetch("/api/runs").then((r) => r.json()).then((runs) => {
  const main = document.getElementById("runs");
  main.replaceChildren(...runs.map(card));
  document.body.dataset.ready = "1";
}).catch((e) => {
  document.getElementById("runs").textContent = "error: cannot load the runs: " + e.message;
});
</script></body></html>
"""
