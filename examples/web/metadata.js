// Pure functions (no DOM): read an edgecnn model's labels, input spec and normalisation from
// the model bytes, and turn pixels into input tensors / outputs into probabilities.
// Works in the browser and in Node (node --test).

// ---------------------------------------------------------------- FlatBuffers (read-only)

class FB {
  constructor(bytes) {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  identifier() {
    return String.fromCharCode(...this.bytes.subarray(4, 8));
  }
  root() {
    return this.dv.getUint32(0, true);
  }
  // Byte offset of field i inside table t, or 0 when absent (vtable entry for field i is at 4+2*i).
  field(t, i) {
    const vt = t - this.dv.getInt32(t, true);
    const o = 4 + 2 * i;
    return o < this.dv.getUint16(vt, true) ? this.dv.getUint16(vt + o, true) : 0;
  }
  deref(p) {
    return p + this.dv.getUint32(p, true);
  }
  scalar(t, i, kind, dflt = 0) {
    const o = this.field(t, i);
    if (!o) return dflt;
    const p = t + o;
    switch (kind) {
      case 'u8': return this.dv.getUint8(p);
      case 'i8': return this.dv.getInt8(p);
      case 'u32': return this.dv.getUint32(p, true);
      case 'i32': return this.dv.getInt32(p, true);
      case 'f32': return this.dv.getFloat32(p, true);
    }
    throw new Error(`bad scalar kind ${kind}`);
  }
  table(t, i) {
    const o = this.field(t, i);
    return o ? this.deref(t + o) : null;
  }
  string(t, i) {
    const o = this.field(t, i);
    if (!o) return null;
    const p = this.deref(t + o);
    return new TextDecoder().decode(this.bytes.subarray(p + 4, p + 4 + this.dv.getUint32(p, true)));
  }
  // Vector field -> {start, length} (start = first element), or null.
  vector(t, i) {
    const o = this.field(t, i);
    if (!o) return null;
    const p = this.deref(t + o);
    return {start: p + 4, length: this.dv.getUint32(p, true)};
  }
  tables(t, i) {
    const v = this.vector(t, i);
    return v ? Array.from({length: v.length}, (_, k) => this.deref(v.start + 4 * k)) : [];
  }
  numbers(t, i, kind) {
    const v = this.vector(t, i);
    if (!v) return [];
    const size = {i32: 4, f32: 4, i64: 8}[kind];
    return Array.from({length: v.length}, (_, k) => {
      const p = v.start + size * k;
      if (kind === 'i32') return this.dv.getInt32(p, true);
      if (kind === 'f32') return this.dv.getFloat32(p, true);
      return Number(this.dv.getBigInt64(p, true));
    });
  }
  bytesOf(t, i) {
    const v = this.vector(t, i);
    return v ? this.bytes.subarray(v.start, v.start + v.length) : null;
  }
}

// ---------------------------------------------------------------- ZIP (appended to .tflite)

// Returns the bytes of entry `name` of a ZIP archive that ends the buffer, or null if absent.
export async function readZipEntry(bytes, name) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - 65535); p--) {
    if (dv.getUint32(p, true) === 0x06054b50) { eocd = p; break; }
  }
  if (eocd < 0) return null;
  const count = dv.getUint16(eocd + 10, true);
  const cdSize = dv.getUint32(eocd + 12, true);
  const cdOffset = dv.getUint32(eocd + 16, true);
  // Offsets may be relative to the zip's own start (archive appended to the model): correct by
  // the distance between where the central directory is and where it says it is (like unzip).
  const delta = eocd - cdSize - cdOffset;
  const dec = new TextDecoder();
  for (let i = 0, p = eocd - cdSize; i < count; i++) {
    if (dv.getUint32(p, true) !== 0x02014b50) throw new Error('zip: bad central directory');
    const method = dv.getUint16(p + 10, true);
    const csize = dv.getUint32(p + 20, true);
    const nlen = dv.getUint16(p + 28, true), elen = dv.getUint16(p + 30, true), clen = dv.getUint16(p + 32, true);
    const local = dv.getUint32(p + 42, true) + delta;
    if (dec.decode(bytes.subarray(p + 46, p + 46 + nlen)) === name) {
      if (dv.getUint32(local, true) !== 0x04034b50) throw new Error('zip: bad local header');
      const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
      const data = bytes.subarray(start, start + csize);
      if (method === 0) return data;
      if (method === 8) {
        const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
        return new Uint8Array(await new Response(stream).arrayBuffer());
      }
      throw new Error(`zip: unsupported compression method ${method} for ${name}`);
    }
    p += 46 + nlen + elen + clen;
  }
  return null;
}

const splitLines = (text) => text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length);

// ---------------------------------------------------------------- .tflite

const TFL_TYPES = {0: 'float32', 1: 'float16', 2: 'int32', 3: 'uint8', 4: 'int64', 7: 'int16', 9: 'int8'};

function tfliteTensor(fb, sg, index) {
  const t = fb.tables(sg, 0)[index];
  const q = fb.table(t, 4);
  const scale = q ? fb.numbers(q, 2, 'f32') : [];
  const zp = q ? fb.numbers(q, 3, 'i64') : [];
  return {
    name: fb.string(t, 3),
    shape: fb.numbers(t, 0, 'i32'),
    dtype: TFL_TYPES[fb.scalar(t, 1, 'i8')] ?? `type${fb.scalar(t, 1, 'i8')}`,
    // Per-tensor quantisation only (what image I/O uses); scale 0 means "not quantised".
    scale: scale.length && scale[0] ? scale[0] : null,
    zeroPoint: scale.length && scale[0] ? (zp[0] ?? 0) : null,
  };
}

export async function readTfliteInfo(bytes) {
  const fb = new FB(bytes);
  if (fb.identifier() !== 'TFL3') throw new Error('not a .tflite file (no TFL3 identifier)');
  const model = fb.root();
  const sg = fb.tables(model, 2)[0];
  const input = tfliteTensor(fb, sg, fb.numbers(sg, 1, 'i32')[0]);
  const output = tfliteTensor(fb, sg, fb.numbers(sg, 2, 'i32')[0]);

  const entry = fb.tables(model, 6).find((m) => fb.string(m, 0) === 'TFLITE_METADATA');
  if (!entry) throw new Error('.tflite has no TFLITE_METADATA');
  const data = fb.bytesOf(fb.tables(model, 4)[fb.scalar(entry, 1, 'u32')], 0);
  const mfb = new FB(data);
  if (mfb.identifier() !== 'M001') throw new Error('TFLITE_METADATA is not an M001 flatbuffer');
  const mm = mfb.root();
  const sgm = mfb.tables(mm, 3)[0];
  const tin = mfb.tables(sgm, 2)[0];
  const tout = mfb.tables(sgm, 3)[0];

  // Input: image properties + NormalizationOptions (process unit type 1).
  let colorSpace = null;
  const content = tin != null ? mfb.table(tin, 3) : null;
  if (content && mfb.scalar(content, 0, 'u8') === 2) {
    colorSpace = {0: null, 1: 'RGB', 2: 'GRAYSCALE'}[mfb.scalar(mfb.table(content, 1), 0, 'i8')];
  }
  let mean = [0], std = [1];
  for (const pu of tin != null ? mfb.tables(tin, 4) : []) {
    if (mfb.scalar(pu, 0, 'u8') === 1) {
      const opts = mfb.table(pu, 1);
      mean = mfb.numbers(opts, 0, 'f32');
      std = mfb.numbers(opts, 1, 'f32');
    }
  }

  // Output: labels from the TENSOR_AXIS_LABELS associated file (in the appended zip), stats.
  let labels = null, kind = null;
  if (tout != null) {
    const file = mfb.tables(tout, 6).find((f) => mfb.scalar(f, 2, 'i8') === 2);
    if (file) {
      const name = mfb.string(file, 0);
      const labelBytes = await readZipEntry(bytes, name);
      if (!labelBytes) throw new Error(`labels file ${name} not found in the model's zip`);
      labels = splitLines(new TextDecoder().decode(labelBytes));
    }
    const stats = mfb.table(tout, 5);
    if (stats) {
      const max = mfb.numbers(stats, 0, 'f32'), min = mfb.numbers(stats, 1, 'f32');
      if (min.length && max.length && min[0] === 0 && max[0] === 1) kind = 'probabilities';
    }
  }
  const [, h, w, c] = input.shape;
  return finishInfo({
    format: 'tflite',
    name: mfb.string(mm, 0),
    labels,
    input: {...input, height: h, width: w, channels: c, colorSpace},
    // Stored as input = pixel * scale + offset, per channel.
    norm: {scale: std.map((s) => 1 / s), offset: mean.map((m, i) => -m / std[i % std.length])},
    output: {...output, kind},
  });
}

// ---------------------------------------------------------------- .onnx (protobuf)

function varint(bytes, p) {
  let v = 0, mul = 1, b;
  do {
    b = bytes[p++];
    v += (b & 0x7f) * mul; // no bit ops: values may exceed 2^31
    mul *= 128;
  } while (b & 0x80);
  return [v, p];
}

// Iterate the fields of one protobuf message: yields {field, wire, value | bytes}.
function* protoFields(bytes) {
  let p = 0;
  while (p < bytes.length) {
    let key, v;
    [key, p] = varint(bytes, p);
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) { [v, p] = varint(bytes, p); yield {field, wire, value: v}; }
    else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else if (wire === 2) {
      [v, p] = varint(bytes, p);
      yield {field, wire, bytes: bytes.subarray(p, p + v)};
      p += v;
    } else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
}

export function readOnnxMetadataProps(bytes) {
  const dec = new TextDecoder();
  const props = {};
  for (const f of protoFields(bytes)) {
    if (f.field !== 14 || f.wire !== 2) continue; // ModelProto.metadata_props
    let key = '', value = '';
    for (const g of protoFields(f.bytes)) {
      if (g.field === 1) key = dec.decode(g.bytes);
      if (g.field === 2) value = dec.decode(g.bytes);
    }
    props[key] = value;
  }
  return props;
}

const asList = (x, n) => (Array.isArray(x) ? x : Array(n).fill(x ?? 0));

export function readOnnxInfo(bytes) {
  const raw = readOnnxMetadataProps(bytes).edgecnn;
  if (!raw) throw new Error('.onnx has no "edgecnn" metadata_props entry');
  const meta = JSON.parse(raw);
  const [h, w, c] = meta.input_shape;
  const n = meta.normalization ?? {};
  return finishInfo({
    format: 'onnx',
    name: meta.name ?? null,
    labels: meta.labels,
    input: {name: meta.input_name ?? 'image', shape: [1, h, w, c], height: h, width: w, channels: c,
      dtype: meta.input_dtype ?? 'float32', scale: null, zeroPoint: null, colorSpace: null},
    norm: {scale: asList(n.scale ?? 1, c), offset: asList(n.offset ?? 0, c)},
    output: {kind: meta.output ?? 'logits', scale: null, zeroPoint: null},
  });
}

function finishInfo(info) {
  const {input} = info;
  if (input.shape.length !== 4) throw new Error(`expected NHWC input, got shape [${input.shape}]`);
  if (![1, 3].includes(input.channels)) throw new Error(`unsupported channel count ${input.channels}`);
  if (!['float32', 'uint8', 'int8'].includes(input.dtype)) throw new Error(`unsupported input dtype ${input.dtype}`);
  info.labels ??= [];
  return info;
}

export async function readModelInfo(bytes) {
  const isTflite = bytes.length >= 8 && String.fromCharCode(...bytes.subarray(4, 8)) === 'TFL3';
  if (isTflite) return readTfliteInfo(bytes);
  try {
    return readOnnxInfo(bytes);
  } catch (err) {
    throw new Error(`not a usable .tflite/.onnx model: ${err.message}`);
  }
}

// ---------------------------------------------------------------- pre/post-processing

// rgba: Uint8ClampedArray of width*height*4 (from getImageData) -> NHWC typed array for the model.
export function preprocess(rgba, info) {
  const {height, width, channels, dtype, scale, zeroPoint} = info.input;
  const n = height * width;
  if (rgba.length !== n * 4) throw new Error(`expected ${width}x${height} RGBA pixels`);
  const Out = {float32: Float32Array, uint8: Uint8Array, int8: Int8Array}[dtype];
  const out = new Out(n * channels);
  const [lo, hi] = dtype === 'uint8' ? [0, 255] : [-128, 127];
  const a = info.norm.scale, b = info.norm.offset;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) {
      const p = channels === 3 ? rgba[4 * i + c]
        : Math.round((rgba[4 * i] + rgba[4 * i + 1] + rgba[4 * i + 2]) / 3);
      const real = p * a[c % a.length] + b[c % b.length];
      // Quantised input: q = round(real / scale + zp); for uint8 with mean 0/std 1, scale 1, zp 0 this is p.
      out[i * channels + c] = dtype === 'float32' ? real
        : Math.min(hi, Math.max(lo, Math.round(real / (scale ?? 1) + (zeroPoint ?? 0))));
    }
  }
  return out;
}

export function softmax(x) {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((u, v) => u + v, 0);
  return e.map((v) => v / s);
}

// Raw model output (typed array) -> probabilities (plain array of numbers).
export function postprocess(raw, info) {
  const {scale, zeroPoint, kind} = info.output;
  let x = Array.from(raw, (v) => (scale ? (v - zeroPoint) * scale : v));
  if (kind === 'probabilities') return x;
  const sum = x.reduce((u, v) => u + v, 0);
  const isProb = kind == null && x.every((v) => v >= 0 && v <= 1) && Math.abs(sum - 1) < 1e-3;
  return isProb ? x : softmax(x);
}

export function topK(probs, labels, k = 5) {
  return probs
    .map((score, i) => ({label: labels[i] ?? `class_${i}`, score}))
    .map((e, i) => ({...e, i}))
    .sort((p, q) => q.score - p.score || p.i - q.i)
    .slice(0, k)
    .map(({label, score}) => ({label, score}));
}
