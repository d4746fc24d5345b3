// edgecnn web example: load a .tflite (LiteRT.js) or .onnx (onnxruntime-web), read labels /
// input size / normalisation from the model file, classify an uploaded image or a webcam frame.
import {readModelInfo, preprocess, postprocess, topK} from './metadata.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// One wasm thread by default; more need cross-origin isolation (COOP/COEP, see serve.py).
const threads = crossOriginIsolated ? Number(params.get('threads') ?? 1) : 1;
const here = (path) => new URL(path, import.meta.url).href;

let model = null; // {backend, info, run(typedArray) -> Promise<typedArray>}
window.edgecnnResults = []; // one entry per classified upload: {image, top} or {image, error}

// ------------------------------------------------------------------ backends

let litertLoaded = null;
async function litertBackend(bytes, info) {
  const litert = await import('@litertjs/core');
  // LiteRT's wasm prints its INFO/WARNING log lines to stderr -> console.error; the emscripten
  // factory picks up a global `Module`, so route them by severity.
  if (!litertLoaded) {
    self.Module = {printErr: (line) => (/^(ERROR|FATAL)/.test(line) ? console.error : console.debug)(line)};
    litertLoaded = litert.loadLiteRt(here('./node_modules/@litertjs/core/wasm/'), {threads: threads > 1});
  }
  await litertLoaded;
  const compileOptions = {accelerator: 'wasm', cpuOptions: {numThreads: threads}};
  if (info.input.dtype === 'int8' || info.output.dtype === 'int8') {
    // LiteRT.js 2.5.3 maps float32, int32 and uint8 tensors only.
    throw new Error('LiteRT.js cannot feed an int8 input or read an int8 output: export with --io uint8 (the default)');
  }
  const compiled = await litert.loadAndCompile(bytes, compileOptions);
  return async (x) => {
    const input = new litert.Tensor(x, info.input.shape);
    try {
      const [out] = await compiled.run(input);
      const data = await out.data();
      out.delete();
      return data;
    } finally {
      input.delete();
    }
  };
}

async function ortBackend(bytes, info) {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = here('./node_modules/onnxruntime-web/dist/');
  const session = await ort.InferenceSession.create(bytes, {executionProviders: ['wasm']});
  const [inName] = session.inputNames, [outName] = session.outputNames;
  return async (x) => {
    const out = await session.run({[inName]: new ort.Tensor('float32', x, info.input.shape)});
    return out[outName].data;
  };
}

// ------------------------------------------------------------------ model loading

async function loadModel(bytes, name) {
  setStatus(`Loading ${name}…`);
  const info = await readModelInfo(bytes);
  const isTflite = info.format === 'tflite';
  const run = await (isTflite ? litertBackend : ortBackend)(bytes, info);
  model = {backend: isTflite ? 'LiteRT.js wasm' : 'onnxruntime-web wasm', info, run, name};
  const {input} = info;
  $('backend').textContent = model.backend;
  $('model').textContent = name;
  $('input').textContent = `${input.dtype} [${input.shape}]` +
    (input.scale ? ` q(scale=${input.scale}, zp=${input.zeroPoint})` : '');
  $('nclasses').textContent = info.labels.length;
  for (const id of ['image-file', 'webcam']) $(id).disabled = false;
  setStatus(`Ready (${name}).`);
  return summary();
}

function summary() {
  const {info} = model;
  return {
    backend: model.backend,
    model: model.name,
    threads,
    labels: info.labels,
    input: {...info.input, normalization: info.norm},
    output: info.output,
  };
}

// ------------------------------------------------------------------ classification

// Draw `source` (Blob or video) on a canvas of the model's input size and return RGBA pixels.
async function pixelsOf(source) {
  const {width, height} = model.info.input;
  // colorSpaceConversion 'none': PNG pixel values must reach the model unchanged.
  const bmp = source instanceof Blob
    ? await createImageBitmap(source, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'})
    : await createImageBitmap(source);
  const canvas = $('preview');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  if (bmp.width === width && bmp.height === height) {
    ctx.drawImage(bmp, 0, 0); // exact size: no resampling
  } else {
    // Centre-crop to the model's aspect ratio, then scale.
    const s = Math.min(bmp.width / width, bmp.height / height);
    const sw = width * s, sh = height * s;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bmp, (bmp.width - sw) / 2, (bmp.height - sh) / 2, sw, sh, 0, 0, width, height);
  }
  bmp.close();
  return ctx.getImageData(0, 0, width, height).data;
}

async function classify(source, name) {
  if (!model) throw new Error('no model loaded');
  const t0 = performance.now();
  const x = preprocess(await pixelsOf(source), model.info);
  const probs = postprocess(await model.run(x), model.info);
  const top = topK(probs, model.info.labels, 5);
  const ms = performance.now() - t0;
  showTop(top);
  $('timing').textContent = `${name}: ${ms.toFixed(1)} ms`;
  return {image: name, top, ms};
}

// Same path as an upload, for scripts: fetch the image and classify the blob.
window.edgecnnClassify = async (url) => {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
  return classify(await res.blob(), url.split('/').pop());
};

function showTop(top) {
  $('top').replaceChildren(...top.map(({label, score}) => {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td></td><td><div class="bar"></div></td>';
    tr.cells[0].textContent = label;
    tr.cells[1].textContent = score.toFixed(4);
    tr.querySelector('.bar').style.width = `${Math.round(score * 200)}px`;
    return tr;
  }));
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function fail(err) {
  const msg = err?.message ?? String(err);
  setStatus(`Error: ${msg}`, true);
  console.error(`edgecnn: ${msg}`);
  return msg;
}

// ------------------------------------------------------------------ UI wiring

$('image-file').addEventListener('change', async (e) => {
  const input = e.target;
  for (const file of [...input.files]) {
    try {
      window.edgecnnResults.push(await classify(file, file.name));
    } catch (err) {
      window.edgecnnResults.push({image: file.name, error: fail(err)});
    }
  }
  input.value = ''; // so choosing the same file again fires 'change'
});

$('model-file').addEventListener('change', async (e) => {
  const file = e.target.files[0];
  if (file) loadModel(new Uint8Array(await file.arrayBuffer()), file.name).catch(fail);
});

$('webcam').addEventListener('click', async () => {
  try {
    const video = $('video');
    video.srcObject = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
    video.style.display = 'block';
    $('snap').disabled = false;
  } catch (err) {
    fail(err);
  }
});

$('snap').addEventListener('click', async () => {
  try {
    window.edgecnnResults.push(await classify($('video'), 'webcam'));
  } catch (err) {
    window.edgecnnResults.push({image: 'webcam', error: fail(err)});
  }
});

// ?model=URL: load at start-up; window.edgecnnReady resolves with the model summary.
const modelUrl = params.get('model');
window.edgecnnReady = modelUrl
  ? fetch(modelUrl)
    .then((r) => {
      if (!r.ok) throw new Error(`fetch ${modelUrl}: HTTP ${r.status}`);
      return r.arrayBuffer();
    })
    .then((buf) => loadModel(new Uint8Array(buf), modelUrl.split('/').pop()))
  : new Promise(() => setStatus('Choose a model file (or pass ?model=URL).'));
window.edgecnnReady.catch(fail);
