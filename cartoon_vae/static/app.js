// cartoon-vae explorer: the page asks the local server (cartoon_vae/explore.py) for every face it shows.
"use strict";

// labels: a conditional model's {attribute: value} of the current face (null for the paper's model).
// reading: the probe's reading of the face's reconstruction, where its own values come from without labels.
const state = { base: null, labels: null, reading: null, original: null, face: null, edits: {}, hold: false, pcs: [],
  a: null, b: null, z: null };
let info = null;
let inFlight = false;
let pending = false;

let busy = 0;

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", body: body instanceof Blob ? body : JSON.stringify(body) };
  document.getElementById("busy").hidden = ++busy === 0;
  try {
    const response = await fetch(path, options);
    const kind = response.headers.get("Content-Type") || "";
    const value = kind.startsWith("application/json") ? await response.json() : await response.blob();
    if (!response.ok) throw new Error(value.error || response.statusText);
    return value;
  } finally {
    document.getElementById("busy").hidden = --busy === 0;
  }
}

// Every failed request is said on the page, in one line; the next action that works clears it.
function report(err, what) {
  const box = document.getElementById("message");
  box.textContent = `${what}: ${err.message}`;
  box.hidden = false;
}

function clearMessage() {
  document.getElementById("message").hidden = true;
}

// An action of the user: its failure is reported, its success clears an old message.
function action(what, fn) {
  return async (...args) => {
    try {
      await fn(...args);
      clearMessage();
    } catch (err) {
      report(err, what);
    }
  };
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => { if (k === "text") node.textContent = v; else node.setAttribute(k, v); });
  children.forEach((c) => node.appendChild(c));
  return node;
}

function editList() {
  return Object.entries(state.edits).filter(([, e]) => e.amount !== 0)
    .map(([attribute, e]) => ({ attribute, to: e.to, amount: e.amount }));
}

// Redraw the edited face; while a request is in flight, only the latest change is sent after it.
async function redraw() {
  if (!state.base) return;
  if (inFlight) { pending = true; return; }
  inFlight = true;
  try {
    const face = Number.isInteger(state.face) ? state.face : null;  // a held-out face: the photo and the truth too
    const v = await api("/api/view", { base: state.base, labels: state.labels, edits: editList(), hold: state.hold, pcs: state.pcs, face });
    state.z = v.z;
    document.getElementById("edited").src = v.image;
    showBeside(v);
    document.getElementById("png").href = v.image;
    showProbe(v.probe);
    saveHash();
  } catch (err) {
    document.getElementById("edited").alt = "error: " + err.message;
    report(err, "could not draw the edited face");
  } finally {
    inFlight = false;
    if (pending) { pending = false; redraw(); }
  }
}

// Beside the decoded edit: the edit on the photo (recoloured or composited: edit.photo_method) and, for the
// embedded set, the true edited face and a heat map of where the photo edit differs from it. Hidden for samples
// and uploads (no photo, no truth).
function showBeside(v) {
  const figures = document.querySelectorAll("figure.beside");
  figures[0].hidden = !v.photo;
  if (v.photo) document.getElementById("photo").src = v.photo;
  [["truth", 1], ["difference", 2]].forEach(([id, k]) => {
    figures[k].hidden = !v[id];
    if (v[id]) document.getElementById(id).src = v[id];
  });
  const caption = document.getElementById("truth-caption");
  if (caption) caption.title = v.truth_note || "";
}

function showProbe(reading) {
  const table = document.getElementById("probe");
  table.innerHTML = "";
  if (!reading) { table.appendChild(el("tr", {}, [el("td", { text: "no probe given (--probe)" })])); return; }
  table.appendChild(el("tr", {}, [el("td", { text: "attribute" }), el("td", { text: "reads" }), el("td", { text: "p" })]));
  Object.entries(reading).forEach(([name, r]) => {
    const edited = state.edits[name] && state.edits[name].amount !== 0;
    const value = el("td", { text: String(r.value), class: edited ? "changed" : "" });
    table.appendChild(el("tr", { "data-attribute": name }, [el("td", { text: name }), value, el("td", { text: r.p.toFixed(2) })]));
  });
}

async function setBase(z, labels, original, face) {
  state.base = z;
  state.labels = labels;
  state.original = original;
  state.face = face;
  document.querySelectorAll("figure.beside").forEach((f) => { f.hidden = true; });  // another face's until redrawn
  document.getElementById("original").src = original || "";
  document.getElementById("original").style.visibility = original ? "visible" : "hidden";
  const recon = await api("/api/view", { base: z, labels, edits: [], hold: false, pcs: [] });
  document.getElementById("reconstruction").src = recon.image;
  state.reading = recon.probe;
  startAtOwnValues(labels, recon.probe);
  document.querySelectorAll("#faces img").forEach((img, i) => img.classList.toggle("chosen", i === face));
  await redraw();
}

// Each selector not being used for an edit starts at the face's own value: a conditional model's label, else the
// probe's reading of it. Moving one slider then changes that attribute only, never the others to value 0.
function startAtOwnValues(labels, reading) {
  info.attributes.forEach((a) => {
    const edit = state.edits[a.name];
    if (edit && edit.amount !== 0) return;
    const own = labels && a.name in labels ? labels[a.name] : reading && reading[a.name] ? reading[a.name].value : null;
    const select = document.querySelector(`select[data-attribute="${a.name}"]`);
    if (own === null || !select || !a.values.includes(own)) return;  // a value no training face has: leave it
    select.value = String(own);
    select.dispatchEvent(new Event("sync"));
  });
}

async function chooseFace(i) {
  const f = await api(`/api/face/${i}`);
  await setBase(f.z, f.labels, f.original, i);
}

function buildFaces() {
  const strip = document.getElementById("faces");
  for (let i = 0; i < info.faces; i++) {
    const img = el("img", { src: `/api/faces/${i}.png`, alt: `held-out face ${i}`, title: `held-out face ${i}` });
    img.addEventListener("click", action(`could not open held-out face ${i}`, () => chooseFace(i)));
    strip.appendChild(img);
  }
}

function buildSamplers() {
  const names = { gmm: "mixture", minmax: "min-max box", normal: "N(0, I)", two_stage: "two-stage VAE" };
  const seeds = {};
  const box = document.getElementById("samplers");
  info.samplers.forEach((s) => {
    seeds[s] = 0;
    const button = el("button", { text: `${names[s] || s} (re-roll)`, "data-sampler": s });
    button.addEventListener("click", action(`could not draw a sample (${names[s] || s})`, async () => {
      const r = await api("/api/sample", { sampler: s, seed: seeds[s]++ });
      await setBase(r.z, r.labels, null, null);
    }));
    box.appendChild(button);
  });
}

function buildAttributes() {
  const box = document.getElementById("attributes");
  info.attributes.forEach((a) => {
    const select = el("select", { "data-attribute": a.name });
    a.values.forEach((v, i) => {
      const word = a.names ? a.names[i] : String(v);
      select.appendChild(el("option", { value: v, text: word === String(v) ? word : `${v}: ${word}` }));
    });
    const swatch = el("img", { alt: `${a.name} mean`, title: "decoded mean of the training faces with this value" });
    const swap = (info.conditional || []).includes(a.name);  // a conditional model's label: 1 is the swap
    const slider = el("input", { type: "range", min: "0", max: swap ? "1" : "1.5", step: "0.05", value: "0", "data-attribute": a.name });
    const shown = el("span", { text: "0", class: "shown" });
    const update = () => {
      swatch.src = `/api/swatches/${a.name}/${select.value}.png`;
      state.edits[a.name] = { to: Number(select.value), amount: Number(slider.value) };
      shown.textContent = Number(slider.value).toFixed(2);
    };
    select.addEventListener("change", () => { update(); redraw(); });
    select.addEventListener("sync", update);  // set to the face's own value: no redraw, nothing edited
    slider.addEventListener("input", () => { update(); redraw(); });
    update();
    state.edits[a.name].amount = 0;
    const name = el("span", { class: "name", text: a.name.replace(/_/g, " ") + (swap ? " (label)" : ""), title: swap ? "the model is conditional on this attribute: the slider blends its label from the face's own to the chosen value (1 = label swap, z unchanged)" : "moves z towards the chosen value's class mean (1 = the class mean)" });
    box.appendChild(el("div", { class: "attr" }, [name, select, swatch, slider, shown]));
  });
  document.getElementById("hold").addEventListener("change", (e) => { state.hold = e.target.checked; redraw(); });
}

function buildPcs() {
  const box = document.getElementById("pcs");
  state.pcs = new Array(info.components).fill(0);
  for (let k = 0; k < info.components; k++) {
    const slider = el("input", { type: "range", min: "-3", max: "3", step: "0.1", value: "0", "data-pc": k });
    const shown = el("span", { text: "0" });
    slider.addEventListener("input", () => {
      state.pcs[k] = Number(slider.value);
      shown.textContent = state.pcs[k].toFixed(1);
      redraw();
    });
    box.appendChild(el("div", { class: "pc" }, [el("span", { text: `PC ${k + 1}` }), slider, shown]));
  }
}

function buildUpload() {
  const drop = document.getElementById("drop");
  const send = action("could not read the uploaded image", async (file) => {
    const r = await api("/api/encode", file);
    await setBase(r.z, r.labels, URL.createObjectURL(file), null);
  });
  document.getElementById("upload").addEventListener("change", (e) => { if (e.target.files[0]) send(e.target.files[0]); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]);
  });
}

function buildInterpolation() {
  const slider = document.getElementById("interp");
  const update = async () => {
    if (!state.a || !state.b) return;
    const t = Number(slider.value);
    const z = state.a.z.map((v, i) => (1 - t) * v + t * state.b.z[i]);
    const labels = t < 0.5 ? state.a.labels : state.b.labels;  // the view takes whole labels; the strip blends them
    const r = await api("/api/view", { base: z, labels, edits: [], hold: false, pcs: [] });
    document.getElementById("interp-preview").src = r.image;  // a preview: the edited view, probe and link stay
    document.getElementById("interp-figure").hidden = false;
  };
  const strip = async () => {
    if (!state.a || !state.b) return;
    slider.disabled = false;
    const r = await api("/api/interpolate", { z0: state.a.z, z1: state.b.z, labels0: state.a.labels, labels1: state.b.labels, steps: 8 });
    const box = document.getElementById("strip");
    box.innerHTML = "";
    r.frames.forEach((src, i) => box.appendChild(el("img", { src, alt: `frame ${i}` })));
  };
  // A and B are the face on screen: its edited code and, for a conditional model, its labels as edited.
  const current = () => ({ z: state.z, labels: editedLabels() });
  document.getElementById("setA").addEventListener("click", action("could not interpolate", () => { state.a = current(); return strip(); }));
  document.getElementById("setB").addEventListener("click", action("could not interpolate", () => { state.b = current(); return strip(); }));
  slider.addEventListener("input", action("could not interpolate", update));
}

// A conditional model's labels as the edited face shows them: a label edit at 1/2 or more takes its value.
function editedLabels() {
  if (!state.labels) return null;
  const labels = { ...state.labels };
  Object.entries(state.edits).forEach(([name, e]) => { if (name in labels && e.amount >= 0.5) labels[name] = e.to; });
  return labels;
}

// The code as a NumPy .npy file (float32, little-endian, shape (latent_dim,)).
function npyBlob(z) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${z.length},), }`;
  while ((10 + header.length + 1) % 64) header += " ";
  header += "\n";
  const prefix = new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 255, header.length >> 8]);
  return new Blob([prefix, new TextEncoder().encode(header), new Float32Array(z).buffer], { type: "application/octet-stream" });
}

function saveHash() {
  const s = { base: state.base, labels: state.labels, face: state.face, edits: editList(), hold: state.hold, pcs: state.pcs };
  const hash = "#" + encodeURIComponent(JSON.stringify(s));
  history.replaceState(null, "", hash);
  document.getElementById("link").href = hash;
  const npy = document.getElementById("npy");
  if (npy.href.startsWith("blob:")) URL.revokeObjectURL(npy.href);
  npy.href = URL.createObjectURL(npyBlob(state.z));
}

async function restoreHash() {
  if (location.hash.length < 2) return false;
  try {
    const s = JSON.parse(decodeURIComponent(location.hash.slice(1)));
    s.edits.forEach((e) => {
      const select = document.querySelector(`select[data-attribute="${e.attribute}"]`);
      const slider = document.querySelector(`input[data-attribute="${e.attribute}"]`);
      if (select && slider) { select.value = e.to; slider.value = e.amount; slider.dispatchEvent(new Event("input")); }
    });
    (s.pcs || []).forEach((v, k) => {
      const slider = document.querySelector(`input[data-pc="${k}"]`);
      if (slider) { slider.value = v; slider.dispatchEvent(new Event("input")); }  // its label follows
    });
    state.hold = Boolean(s.hold);
    document.getElementById("hold").checked = state.hold;
    if (s.face !== null && s.face !== undefined) await chooseFace(s.face); else await setBase(s.base, s.labels || null, null, null);
    return true;
  } catch (err) {
    report(err, "this link's view could not be restored; showing held-out face 0 instead");
    return false;
  }
}

async function main() {
  try {
    info = await api("/api/info");
  } catch (err) {
    report(err, "the explorer's server did not answer");
    return;
  }
  const given = info.conditional && info.conditional.length ? `, conditional on ${info.conditional.join(", ")}` : "";
  document.getElementById("run").textContent = `${info.run}: ${info.image_size}x${info.image_size}, ${info.latent_dim}-d codes${given}`;
  document.getElementById("edited-caption").textContent =
    `edited (${info.image_size} px, upscaled by the browser)`;
  buildFaces();
  buildSamplers();
  buildAttributes();
  buildPcs();
  buildUpload();
  buildInterpolation();
  document.getElementById("reset").addEventListener("click", () => {
    document.querySelectorAll("#attributes input[type=range], #pcs input").forEach((s) => { s.value = 0; s.dispatchEvent(new Event("input")); });
    startAtOwnValues(state.labels, state.reading);  // the selectors back at the face's own values
  });
  if (!(await restoreHash()) && info.faces) {
    try { await chooseFace(0); } catch (err) { report(err, "could not open held-out face 0"); }  // keeps a message
  }
  document.body.dataset.ready = "1";
}

main();
