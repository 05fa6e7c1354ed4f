// polyseq's native CPU passes: the encoder, the decoder's cached pass over k new tokens per row,
// and the output layer, each one call with one OpenMP region.
//
// Every value a row gets is computed by the same sequence of float operations whatever else
// shares the call: products sum over the input in one fixed order (one FMA chain per output,
// register-blocked over rows and 32 outputs, never split over the input), norms and attention
// run per token with fixed reduction orders, and threads split outputs, never sums. So a token's
// states and logits have the same bits at batch 1 or 64, in a pass of 1 token or k, on 1 thread
// or 16: greedy and the verification of a draft agree exactly.
//
// Built by polyseq.model.native.build with -O3 -march=native -fopenmp -ffp-contract=off; FMA is
// written out where it is meant, so the compiler cannot fuse one chain and not another.

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace {

typedef float v16 __attribute__((vector_size(64)));
constexpr int PANEL = 32;  // outputs per packed weight panel: two 16-float vectors
constexpr int ROW_CHUNK = 64;  // rows per work item of a product (their inputs stay in L2)

inline v16 load(const float* p) { v16 v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }
inline v16 splat(float x) { return v16{} + x; }

inline v16 fmadd(v16 a, v16 b, v16 c) {
#if defined(__AVX512F__)
    return (v16)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__)
    __m256 a0, a1, b0, b1, c0, c1;
    std::memcpy(&a0, &a, 32); std::memcpy(&a1, (const char*)&a + 32, 32);
    std::memcpy(&b0, &b, 32); std::memcpy(&b1, (const char*)&b + 32, 32);
    std::memcpy(&c0, &c, 32); std::memcpy(&c1, (const char*)&c + 32, 32);
    c0 = _mm256_fmadd_ps(a0, b0, c0);
    c1 = _mm256_fmadd_ps(a1, b1, c1);
    v16 r; std::memcpy(&r, &c0, 32); std::memcpy((char*)&r + 32, &c1, 32);
    return r;
#else
    return a * b + c;
#endif
}

inline float sum16(v16 v) {  // a fixed tree
#if defined(__AVX512F__)
    return _mm512_reduce_add_ps((__m512)v);
#else
    float l[16]; std::memcpy(l, &v, sizeof l);
    for (int width = 8; width > 0; width /= 2)
        for (int i = 0; i < width; ++i) l[i] += l[i + width];
    return l[0];
#endif
}

// sum_i a[i] * b[i] in a fixed order (16-wide chains, then the tail)
inline float dot(const float* a, const float* b, int n) {
    v16 acc{};
    int i = 0;
    for (; i + 16 <= n; i += 16) acc = fmadd(load(a + i), load(b + i), acc);
    float total = sum16(acc);
    for (; i < n; ++i) total += a[i] * b[i];
    return total;
}

// out[i] += w * v[i]
inline void axpy(float w, const float* v, float* out, int n) {
    int i = 0;
    v16 ws = splat(w);
    for (; i + 16 <= n; i += 16) store(out + i, fmadd(ws, load(v + i), load(out + i)));
    for (; i < n; ++i) out[i] += w * v[i];
}

float* aligned_floats(size_t count) {
    size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
    void* memory = std::aligned_alloc(64, bytes ? bytes : 64);
    if (!memory) throw std::bad_alloc();
    return static_cast<float*>(memory);
}

enum Activation { RELU = 0, GELU = 1, SILU = 2 };
enum Epilogue { STORE = 0, ACTIVATE = 1, ADD = 2 };  // y = t; y = act(t); y += t (t = x W + b)

// A linear layer's weight packed once into panels of 32 outputs: panel p holds, for each input i,
// the weights of outputs 32p..32p+31 (zeros past the last output), so a product reads it in order.
struct Linear {
    int in = 0, out = 0, panels = 0;
    float* packed = nullptr;  // [panels][in][PANEL]
    float* bias = nullptr;  // [panels * PANEL], zeros where the layer has none

    void init(const float* weight, const float* bias_or_null, int outputs, int inputs) {
        in = inputs; out = outputs; panels = (outputs + PANEL - 1) / PANEL;
        packed = aligned_floats(size_t(panels) * in * PANEL);
        bias = aligned_floats(size_t(panels) * PANEL);
        std::memset(packed, 0, sizeof(float) * size_t(panels) * in * PANEL);
        std::memset(bias, 0, sizeof(float) * size_t(panels) * PANEL);
        for (int o = 0; o < outputs; ++o) {
            float* panel = packed + size_t(o / PANEL) * in * PANEL + o % PANEL;
            for (int i = 0; i < inputs; ++i) panel[size_t(i) * PANEL] = weight[size_t(o) * inputs + i];
            if (bias_or_null) bias[o] = bias_or_null[o];
        }
    }
    void release() { std::free(packed); std::free(bias); }
};

struct Norm {
    const float* weight = nullptr;  // null: no norm here
    const float* bias = nullptr;
    std::vector<float> w, b;
    void init(const float* weight_or_null, const float* bias_or_null, int dim) {
        if (!weight_or_null) return;
        w.assign(weight_or_null, weight_or_null + dim);
        b = bias_or_null ? std::vector<float>(bias_or_null, bias_or_null + dim) : std::vector<float>(dim, 0.f);
        weight = w.data(); bias = b.data();
    }
    bool present() const { return weight != nullptr; }
};

// polyseq_native_new's weights in order; a norm and a linear layer take two: weight, then bias
struct WeightReader {
    const float* const* next;
    const float* take() { return *next++; }
    void norm(Norm& norm, int dim) {
        const float* weight = take();
        norm.init(weight, take(), dim);
    }
    void linear(Linear& layer, int outputs, int inputs) {
        const float* weight = take();
        layer.init(weight, take(), outputs, inputs);
    }
};

struct EncoderLayer { Norm attention_norm, ffn_norm; Linear qkv, out, inner, outer; };
struct DecoderLayer { Norm self_norm, cross_norm, ffn_norm; Linear qkv, out, query, kv, cross_out, inner, outer; };

float activate(float x, int activation) {
    switch (activation) {
        case RELU: return x > 0.f ? x : 0.f;
        case GELU: return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752f));
        default: return x / (1.f + std::exp(-x));
    }
}

// MR rows times NP panels: every output is one FMA chain over the inputs in order, then the bias;
// the block shape only decides how many chains run side by side (a single row needs several
// panels at once to hide the FMA latency, many rows share each weight they load).
template <int MR, int NP>
void micro(const float* x, int ldx, const float* panels, int in, const float* bias, float* y, int ldy,
           int columns, int epilogue, int activation) {
    v16 acc[MR][NP][2];
    for (int r = 0; r < MR; ++r)
        for (int p = 0; p < NP; ++p) acc[r][p][0] = acc[r][p][1] = v16{};
    const size_t stride = size_t(in) * PANEL;  // from one panel to the next
    for (int i = 0; i < in; ++i) {
        v16 w[NP][2];
        for (int p = 0; p < NP; ++p) {
            w[p][0] = load(panels + p * stride + size_t(i) * PANEL);
            w[p][1] = load(panels + p * stride + size_t(i) * PANEL + 16);
        }
        for (int r = 0; r < MR; ++r) {
            v16 xs = splat(x[size_t(r) * ldx + i]);
            for (int p = 0; p < NP; ++p) {
                acc[r][p][0] = fmadd(xs, w[p][0], acc[r][p][0]);
                acc[r][p][1] = fmadd(xs, w[p][1], acc[r][p][1]);
            }
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int p = 0; p < NP; ++p) {
            int count = std::min(PANEL, columns - p * PANEL);
            float t[PANEL];
            store(t, acc[r][p][0] + load(bias + p * PANEL));
            store(t + 16, acc[r][p][1] + load(bias + p * PANEL + 16));
            float* row = y + size_t(r) * ldy + p * PANEL;
            if (epilogue == ADD) {
                for (int c = 0; c < count; ++c) row[c] += t[c];
            } else if (epilogue == ACTIVATE) {
                for (int c = 0; c < count; ++c) row[c] = activate(t[c], activation);
            } else {
                std::memcpy(row, t, sizeof(float) * count);
            }
        }
}

using Micro = void (*)(const float*, int, const float*, int, const float*, float*, int, int, int, int);
// MICROS[np][mr]: up to 24 accumulators (of the 32 vector registers)
constexpr int MOST_ROWS[5] = {0, 8, 6, 0, 3};
const Micro MICROS[5][9] = {
    {},
    {nullptr, micro<1, 1>, micro<2, 1>, micro<3, 1>, micro<4, 1>, micro<5, 1>, micro<6, 1>, micro<7, 1>, micro<8, 1>},
    {nullptr, micro<1, 2>, micro<2, 2>, micro<3, 2>, micro<4, 2>, micro<5, 2>, micro<6, 2>},
    {},
    {nullptr, micro<1, 4>, micro<2, 4>, micro<3, 4>},
};

// y (rows x out, stride ldy) = epilogue(x (rows x in, stride ldx) W + b); call inside a parallel
// region (or outside one, then serially): work items are (64-row chunk, group of panels) pairs.
void product(const Linear& layer, const float* x, int ldx, int rows, float* y, int ldy, int epilogue,
             int activation = RELU) {
    // a few rows take four panels at a time, more rows two; fewer where threads would idle
    int group = rows <= 3 ? 4 : 2, threads = omp_get_num_threads();
    while (group > 1 && layer.panels < group * threads) group /= 2;
    int groups = (layer.panels + group - 1) / group;
    int chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK;
    long items = long(chunks) * groups;
#pragma omp for schedule(static)
    for (long item = 0; item < items; ++item) {
        int chunk = int(item / groups), first_panel = int(item % groups) * group;
        int panels = std::min(group, layer.panels - first_panel);
        int np = panels == 3 ? 2 : panels;  // three panels go as two and one
        int first = chunk * ROW_CHUNK, last = std::min(rows, first + ROW_CHUNK);
        for (int done = 0; done < panels; done += np, np = panels - done) {
            int column = (first_panel + done) * PANEL;
            const float* weights = layer.packed + size_t(first_panel + done) * layer.in * PANEL;
            for (int row = first; row < last;) {
                int block = std::min(MOST_ROWS[np], last - row);
                MICROS[np][block](x + size_t(row) * ldx, ldx, weights, layer.in, layer.bias + column,
                                  y + size_t(row) * ldy + column, ldy, layer.out - column, epilogue, activation);
                row += block;
            }
        }
    }
}

// y = (x - mean) / sqrt(var + eps) * w + b over each row of `dim`, in place allowed
void normalize_row(const float* x, float* y, const Norm& norm, int dim, float eps) {
    v16 acc{};
    int i = 0;
    for (; i + 16 <= dim; i += 16) acc += load(x + i);
    float sum = sum16(acc);
    for (; i < dim; ++i) sum += x[i];
    float mean = sum / dim;
    v16 mean16 = splat(mean), sq{};
    for (i = 0; i + 16 <= dim; i += 16) { v16 d = load(x + i) - mean16; sq = fmadd(d, d, sq); }
    float var = sum16(sq);
    for (; i < dim; ++i) { float d = x[i] - mean; var += d * d; }
    float scale = 1.f / std::sqrt(var / dim + eps);
    for (i = 0; i < dim; ++i) y[i] = (x[i] - mean) * scale * norm.weight[i] + norm.bias[i];
}

void normalize(const float* x, float* y, const Norm& norm, int rows, int dim, float eps) {
#pragma omp for schedule(static)
    for (int row = 0; row < rows; ++row) normalize_row(x + size_t(row) * dim, y + size_t(row) * dim, norm, dim, eps);
}

typedef int32_t i16v __attribute__((vector_size(64)));

// e^x on 16 lanes (Cephes' polynomial, within 2 ulp of expf), so a softmax takes no call per
// score; every score goes through this same code, whatever its place in the row
inline v16 exp16(v16 x) {
    x = x < splat(-87.3f) ? splat(-87.3f) : x;
    x = x > splat(88.3f) ? splat(88.3f) : x;
    v16 scaled = x * splat(1.44269504088896341f) + splat(0.5f);
    i16v whole = __builtin_convertvector(scaled, i16v);  // truncates: step down where it rounded up
    v16 n = __builtin_convertvector(whole, v16);
    i16v above = n > scaled;
    whole += above;  // true lanes are -1
    n = __builtin_convertvector(whole, v16);
    x = x - n * splat(0.693359375f) - n * splat(-2.12194440e-4f);
    v16 y = splat(1.9875691500e-4f);
    y = y * x + splat(1.3981999507e-3f);
    y = y * x + splat(8.3334519073e-3f);
    y = y * x + splat(4.1665795894e-2f);
    y = y * x + splat(1.6666665459e-1f);
    y = y * x + splat(5.0000001201e-1f);
    y = y * (x * x) + x + splat(1.f);
    i16v bits = (whole + 127) << 23;
    v16 power;
    std::memcpy(&power, &bits, sizeof power);
    return y * power;
}

inline float max16(v16 v) {
    float l[16]; std::memcpy(l, &v, sizeof l);
    for (int width = 8; width > 0; width /= 2)
        for (int i = 0; i < width; ++i) l[i] = l[i] > l[i + width] ? l[i] : l[i + width];
    return l[0];
}

// out (16 C) = sum_j scores[j] * share * value(j), in order of j
template <int C, typename Value>
void weighted_sum(const float* scores, float share, int n, Value value, float* out) {
    v16 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = v16{};
    for (int j = 0; j < n; ++j) {
        v16 weight = splat(scores[j] * share);
        const float* row = value(j);
        for (int c = 0; c < C; ++c) acc[c] = fmadd(weight, load(row + 16 * c), acc[c]);
    }
    for (int c = 0; c < C; ++c) store(out + 16 * c, acc[c]);
}

// softmax(scores[0..n)) . values -> out (dh), value row j at value(j); `scores` has room for n
// rounded up to 16
template <typename Value>
void attend(float* scores, int n, Value value, int dh, float* out) {
    std::memset(out, 0, sizeof(float) * dh);
    if (n == 0) return;
    int padded = (n + 15) / 16 * 16;
    for (int j = n; j < padded; ++j) scores[j] = -INFINITY;
    v16 top = splat(-INFINITY);
    for (int j = 0; j < padded; j += 16) { v16 s = load(scores + j); top = s > top ? s : top; }
    v16 highest = splat(max16(top)), total{};
    v16 lane{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int j = 0; j < padded; j += 16) {
        v16 e = exp16(load(scores + j) - highest);
        e = lane + float(j) < splat(float(n)) ? e : v16{};  // the padding weighs nothing
        store(scores + j, e);
        total += e;
    }
    float share = 1.f / sum16(total);
    switch (dh) {  // the usual head widths keep the sum in registers
        case 16: weighted_sum<1>(scores, share, n, value, out); break;
        case 32: weighted_sum<2>(scores, share, n, value, out); break;
        case 64: weighted_sum<4>(scores, share, n, value, out); break;
        case 128: weighted_sum<8>(scores, share, n, value, out); break;
        default:
            for (int j = 0; j < n; ++j) axpy(scores[j] * share, value(j), out, dh);
    }
}

// log sum_j exp(x[j] - highest) over a row of n values, stored with room for n rounded up to 16
float log_sum_exp(const float* x, float highest, int n) {
    v16 top = splat(highest), total{}, lane{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int j = 0; j < n; j += 16) {
        v16 e = exp16(load(x + j) - top);
        total += lane + float(j) < splat(float(n)) ? e : v16{};  // past the row: nothing
    }
    return std::log(sum16(total));
}

struct Model {
    int dim, heads, head_dim, ffn, vocab, encoder_layers, decoder_layers, max_positions, pre, activation;
    float embed_scale, eps;
    std::vector<float> embed, encoder_positions, decoder_positions;  // (V, D), (P, D), (P, D)
    Norm encoder_embedding_norm, decoder_embedding_norm, encoder_norm, decoder_norm;
    std::vector<EncoderLayer> encoder;
    std::vector<DecoderLayer> decoder;
    Linear output;
    std::mutex busy;  // the work buffers below serve one call at a time
    std::vector<float> x, h, wide, hidden, attention, scores, logits;

    // the work buffers of a call over `rows` tokens, and `keys` scores per thread
    void reserve(int rows, int keys, int threads) {
        grow(x, size_t(rows) * dim);
        grow(h, size_t(rows) * dim);
        grow(wide, size_t(rows) * 3 * dim);
        grow(hidden, size_t(rows) * ffn);
        grow(attention, size_t(rows) * dim);
        grow(scores, size_t(std::max(1, threads)) * keys);
    }

    float* grow(std::vector<float>& buffer, size_t count) {
        if (buffer.size() < count) buffer.resize(count);
        return buffer.data();
    }

    // residual sublayer input: the norm's output (pre) or x itself (post)
    const float* sublayer_input(const Norm& norm, float* state, int rows) {
        if (!pre) return state;
        normalize(state, h.data(), norm, rows, dim, eps);
        return h.data();
    }

    // state += sublayer (pre) / state = norm(state + sublayer) (post), the sublayer's last product
    // applied here from `input` (rows x layer.in)
    void residual(const Linear& layer, const float* input, float* state, const Norm& norm, int rows) {
        if (pre) {
            product(layer, input, layer.in, rows, state, dim, ADD);
            return;
        }
        float* sum = wide.data();  // free here: post-norm sublayers are done with it
#pragma omp for schedule(static)
        for (size_t i = 0; i < size_t(rows) * dim; ++i) sum[i] = 0.f;
        product(layer, input, layer.in, rows, sum, dim, ADD);
#pragma omp for schedule(static)
        for (int row = 0; row < rows; ++row) {
            float* s = sum + size_t(row) * dim;
            float* t = state + size_t(row) * dim;
            for (int i = 0; i < dim; ++i) s[i] = t[i] + s[i];
            normalize_row(s, t, norm, dim, eps);
        }
    }

    void feed_forward(const Linear& inner, const Linear& outer, const Norm& norm, float* state, int rows) {
        const float* input = sublayer_input(norm, state, rows);
        product(inner, input, dim, rows, hidden.data(), ffn, ACTIVATE, activation);
        residual(outer, hidden.data(), state, norm, rows);
    }

    // inside a parallel region: the output layer's logits of `rows` states (norm, then product)
    // into `out`, rows `stride` apart; `h` holds the normed states (reserve it first)
    // the fused choosers' logits: rows padded to 16 floats, the output norm's buffer grown too
    int padded_vocab() const { return (vocab + 15) / 16 * 16; }
    float* logits_buffer(int64_t rows) {
        grow(h, size_t(rows) * dim);
        return grow(logits, size_t(rows) * padded_vocab());
    }

    void output_logits(const float* states, int rows, float* out, int stride) {
        const float* input = states;
        if (decoder_norm.present()) {
            normalize(states, h.data(), decoder_norm, rows, dim, eps);
            input = h.data();
        }
        product(output, input, dim, rows, out, stride, STORE);
    }

    void embed_rows(const int64_t* tokens, const int* positions, int rows, const float* table,
                    const Norm& norm, float* out) {
#pragma omp for schedule(static)
        for (int row = 0; row < rows; ++row) {
            const float* e = embed.data() + size_t(tokens[row]) * dim;
            const float* p = table + size_t(positions[row]) * dim;
            float* y = out + size_t(row) * dim;
            for (int i = 0; i < dim; ++i) y[i] = (embed_scale != 1.f ? e[i] * embed_scale : e[i]) + p[i];
            if (norm.present()) normalize_row(y, y, norm, dim, eps);
        }
    }
};

struct Tokens {  // the real tokens of a call, in row order
    std::vector<int64_t> id;
    std::vector<int> row, position;
};

}  // namespace

extern "C" {

void polyseq_native_free(void* handle);

// A model's weights packed: dims are dim, heads, ffn, vocab, encoder_layers, decoder_layers,
// max_positions, pre, activation; scales embed_scale, eps; weights in the order of
// polyseq/model/native/passes.py (_weights). Null when memory runs out.
void* polyseq_native_new(const int64_t* dims, const float* scales, const float* const* weights) {
    Model* m = new (std::nothrow) Model();
    if (!m) return nullptr;
    try {
        m->dim = int(dims[0]); m->heads = int(dims[1]); m->ffn = int(dims[2]); m->vocab = int(dims[3]);
        m->encoder_layers = int(dims[4]); m->decoder_layers = int(dims[5]); m->max_positions = int(dims[6]);
        m->pre = int(dims[7]); m->activation = int(dims[8]);
        m->head_dim = m->dim / m->heads;
        m->embed_scale = scales[0]; m->eps = scales[1];
        int d = m->dim, f = m->ffn;
        WeightReader w{weights};
        const float* embed = w.take();
        m->embed.assign(embed, embed + size_t(m->vocab) * d);
        const float* positions = w.take();
        m->encoder_positions.assign(positions, positions + size_t(m->max_positions) * d);
        positions = w.take();
        m->decoder_positions.assign(positions, positions + size_t(m->max_positions) * d);
        w.norm(m->encoder_embedding_norm, d);
        w.norm(m->decoder_embedding_norm, d);
        w.norm(m->encoder_norm, d);
        w.norm(m->decoder_norm, d);
        w.linear(m->output, m->vocab, d);
        m->encoder.resize(m->encoder_layers);
        for (auto& layer : m->encoder) {
            w.norm(layer.attention_norm, d);
            w.linear(layer.qkv, 3 * d, d);
            w.linear(layer.out, d, d);
            w.norm(layer.ffn_norm, d);
            w.linear(layer.inner, f, d);
            w.linear(layer.outer, d, f);
        }
        m->decoder.resize(m->decoder_layers);
        for (auto& layer : m->decoder) {
            w.norm(layer.self_norm, d);
            w.linear(layer.qkv, 3 * d, d);
            w.linear(layer.out, d, d);
            w.norm(layer.cross_norm, d);
            w.linear(layer.query, d, d);
            w.linear(layer.kv, 2 * d, d);
            w.linear(layer.cross_out, d, d);
            w.norm(layer.ffn_norm, d);
            w.linear(layer.inner, f, d);
            w.linear(layer.outer, d, f);
        }
    } catch (const std::bad_alloc&) {
        polyseq_native_free(m);
        return nullptr;
    }
    return m;
}

void polyseq_native_free(void* handle) {
    Model* m = static_cast<Model*>(handle);
    m->output.release();
    for (auto& l : m->encoder) { l.qkv.release(); l.out.release(); l.inner.release(); l.outer.release(); }
    for (auto& l : m->decoder) {
        l.qkv.release(); l.out.release(); l.query.release(); l.kv.release(); l.cross_out.release();
        l.inner.release(); l.outer.release();
    }
    delete m;
}

// src (B, S) ids, real where != pad -> states (B, S, D), zeros at padding. Returns 0, or 1 for an
// id outside the vocabulary.
int polyseq_native_encode(void* handle, const int64_t* src, int64_t batch, int64_t length, int64_t pad,
                          float* states, int threads) {
    Model& m = *static_cast<Model*>(handle);
    std::lock_guard<std::mutex> lock(m.busy);
    int d = m.dim, hd = m.head_dim, heads = m.heads;
    if (length > m.max_positions) return 2;
    Tokens t;
    std::vector<int> start(batch + 1, 0), index(size_t(batch) * length, -1);
    for (int64_t b = 0; b < batch; ++b) {
        start[b] = int(t.id.size());
        for (int64_t s = 0; s < length; ++s) {
            int64_t id = src[b * length + s];
            if (id == pad) continue;
            if (id < 0 || id >= m.vocab) return 1;
            index[b * length + s] = int(t.id.size());
            t.id.push_back(id); t.row.push_back(int(b)); t.position.push_back(int(s));
        }
    }
    start[batch] = int(t.id.size());
    int n = int(t.id.size()), most = 1;
    for (int64_t b = 0; b < batch; ++b) most = std::max(most, start[b + 1] - start[b]);
    most = (most + 15) / 16 * 16;  // attend's room
    m.reserve(n, most, threads);
    float *x = m.x.data(), *att = m.attention.data(), *scores = m.scores.data();
    float scale = 1.f / std::sqrt(float(hd));
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        m.embed_rows(t.id.data(), t.position.data(), n, m.encoder_positions.data(), m.encoder_embedding_norm, x);
        for (auto& layer : m.encoder) {
            const float* input = m.sublayer_input(layer.attention_norm, x, n);
            float* qkv = m.wide.data();
            product(layer.qkv, input, d, n, qkv, 3 * d, STORE);
#pragma omp for schedule(static)
            for (long item = 0; item < long(n) * heads; ++item) {
                int token = int(item / heads), head = int(item % heads);
                int b = t.row[token], first = start[b], count = start[b + 1] - first;
                const float* q = qkv + size_t(token) * 3 * d + size_t(head) * hd;
                float* s = scores + size_t(omp_get_thread_num()) * most;
                for (int j = 0; j < count; ++j)
                    s[j] = dot(q, qkv + size_t(first + j) * 3 * d + d + size_t(head) * hd, hd) * scale;
                attend(s, count, [&](int j) { return qkv + size_t(first + j) * 3 * d + 2 * d + size_t(head) * hd; },
                       hd, att + size_t(token) * d + size_t(head) * hd);
            }
            m.residual(layer.out, att, x, layer.attention_norm, n);
            m.feed_forward(layer.inner, layer.outer, layer.ffn_norm, x, n);
        }
#pragma omp for schedule(static)
        for (long cell = 0; cell < long(batch) * length; ++cell) {
            float* out = states + size_t(cell) * d;
            int token = index[cell];
            if (token < 0) std::memset(out, 0, sizeof(float) * d);
            else if (m.encoder_norm.present()) normalize_row(x + size_t(token) * d, out, m.encoder_norm, d, m.eps);
            else std::memcpy(out, x + size_t(token) * d, sizeof(float) * d);
        }
    }
    return 0;
}

// Cross-attention keys and values of every decoder layer from states (B, S, D), into keys[l] and
// values[l], each (B, H, S, Dh).
int polyseq_native_cross(void* handle, const float* states, int64_t batch, int64_t length,
                         float* const* keys, float* const* values, int threads) {
    Model& m = *static_cast<Model*>(handle);
    std::lock_guard<std::mutex> lock(m.busy);
    int d = m.dim, hd = m.head_dim, heads = m.heads;
    int n = int(batch * length);
    float* kv = m.grow(m.wide, size_t(n) * 2 * d);
#pragma omp parallel num_threads(threads) if (threads > 1)
    for (int l = 0; l < m.decoder_layers; ++l) {
        product(m.decoder[l].kv, states, d, n, kv, 2 * d, STORE);
#pragma omp for schedule(static)
        for (long cell = 0; cell < n; ++cell) {
            int64_t b = cell / length, s = cell % length;
            for (int head = 0; head < heads; ++head) {
                size_t to = ((size_t(b) * heads + head) * length + s) * hd;
                std::memcpy(keys[l] + to, kv + size_t(cell) * 2 * d + size_t(head) * hd, sizeof(float) * hd);
                std::memcpy(values[l] + to, kv + size_t(cell) * 2 * d + d + size_t(head) * hd, sizeof(float) * hd);
            }
        }
    }
    return 0;
}

// One decoder pass: tokens (B, k) continue each row's cached prefix of lengths[b] tokens; with
// widths, row b's first widths[b] tokens are real and the rest padding (zeros out, no cache
// entry). Self keys/values (B, H, capacity, Dh) per layer gain the real tokens'. Row b attends to
// source sources[b] of the cross keys/values (B0, H, S, Dh) and source_mask (B0, S): the rows of
// a beam share their source's. language (B, D) or null is added after the embedding
// (language_at 1) or after the last layer (2). Writes states (B, k, D). Returns 0, 1 for an id
// outside the vocabulary, 2 for a position past max_positions or the capacity.
int polyseq_native_decode(void* handle, const int64_t* tokens, int64_t batch, int64_t k, const int64_t* lengths,
                          const int64_t* widths, float* const* self_keys, float* const* self_values,
                          int64_t capacity, const int64_t* sources, const float* const* cross_keys,
                          const float* const* cross_values, int64_t source_length, const uint8_t* source_mask,
                          const float* language, int language_at, float* states, int threads) {
    Model& m = *static_cast<Model*>(handle);
    std::lock_guard<std::mutex> lock(m.busy);
    int d = m.dim, hd = m.head_dim, heads = m.heads;
    Tokens t;
    std::vector<int> slot;  // each real token's place in the (B, k) block
    for (int64_t b = 0; b < batch; ++b) {
        int64_t width = widths ? widths[b] : k;
        for (int64_t i = 0; i < width; ++i) {
            int64_t id = tokens[b * k + i], position = lengths[b] + i;
            if (id < 0 || id >= m.vocab) return 1;
            if (position >= m.max_positions || position >= capacity) return 2;
            t.id.push_back(id); t.row.push_back(int(b)); t.position.push_back(int(position));
            slot.push_back(int(b * k + i));
        }
    }
    // each row's real source positions, which cross-attention reads
    std::vector<std::vector<int>> real(batch);
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t j = 0; j < source_length; ++j)
            if (source_mask[sources[b] * source_length + j]) real[b].push_back(int(j));
    int n = int(t.id.size()), most = int(std::max<int64_t>(source_length, 1));
    for (int p : t.position) most = std::max(most, p + 1);
    most = (most + 15) / 16 * 16;  // attend's room
    m.reserve(n, most, threads);
    float *x = m.x.data(), *att = m.attention.data(), *scores = m.scores.data();
    float scale = 1.f / std::sqrt(float(hd));
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        m.embed_rows(t.id.data(), t.position.data(), n, m.decoder_positions.data(), m.decoder_embedding_norm, x);
        if (language && language_at == 1) {
#pragma omp for schedule(static)
            for (int r = 0; r < n; ++r)
                for (int i = 0; i < d; ++i) x[size_t(r) * d + i] += language[size_t(t.row[r]) * d + i];
        }
        for (int l = 0; l < m.decoder_layers; ++l) {
            const DecoderLayer& layer = m.decoder[l];
            const float* input = m.sublayer_input(layer.self_norm, x, n);
            float* qkv = m.wide.data();
            product(layer.qkv, input, d, n, qkv, 3 * d, STORE);
#pragma omp for schedule(static)
            for (int r = 0; r < n; ++r)
                for (int head = 0; head < heads; ++head) {
                    size_t to = ((size_t(t.row[r]) * heads + head) * capacity + t.position[r]) * hd;
                    std::memcpy(self_keys[l] + to, qkv + size_t(r) * 3 * d + d + size_t(head) * hd, sizeof(float) * hd);
                    std::memcpy(self_values[l] + to, qkv + size_t(r) * 3 * d + 2 * d + size_t(head) * hd,
                                sizeof(float) * hd);
                }
#pragma omp for schedule(static)
            for (long item = 0; item < long(n) * heads; ++item) {
                int r = int(item / heads), head = int(item % heads);
                size_t base = (size_t(t.row[r]) * heads + head) * capacity * hd;
                const float* q = qkv + size_t(r) * 3 * d + size_t(head) * hd;
                const float* keys = self_keys[l] + base;
                const float* values = self_values[l] + base;
                float* s = scores + size_t(omp_get_thread_num()) * most;
                int count = t.position[r] + 1;
                for (int j = 0; j < count; ++j) s[j] = dot(q, keys + size_t(j) * hd, hd) * scale;
                attend(s, count, [&](int j) { return values + size_t(j) * hd; }, hd,
                       att + size_t(r) * d + size_t(head) * hd);
            }
            m.residual(layer.out, att, x, layer.self_norm, n);

            input = m.sublayer_input(layer.cross_norm, x, n);
            float* q_all = m.wide.data();
            product(layer.query, input, d, n, q_all, d, STORE);
#pragma omp for schedule(static)
            for (long item = 0; item < long(n) * heads; ++item) {
                int r = int(item / heads), head = int(item % heads);
                int64_t b = t.row[r];
                size_t base = (size_t(sources[b]) * heads + head) * source_length * hd;
                const float* q = q_all + size_t(r) * d + size_t(head) * hd;
                const float* keys = cross_keys[l] + base;
                const float* values = cross_values[l] + base;
                const std::vector<int>& seen = real[b];
                float* s = scores + size_t(omp_get_thread_num()) * most;
                int count = int(seen.size());
                for (int j = 0; j < count; ++j) s[j] = dot(q, keys + size_t(seen[j]) * hd, hd) * scale;
                attend(s, count, [&](int j) { return values + size_t(seen[j]) * hd; }, hd,
                       att + size_t(r) * d + size_t(head) * hd);
            }
            m.residual(layer.cross_out, att, x, layer.cross_norm, n);
            m.feed_forward(layer.inner, layer.outer, layer.ffn_norm, x, n);
        }
        if (language && language_at == 2) {
#pragma omp for schedule(static)
            for (int r = 0; r < n; ++r)
                for (int i = 0; i < d; ++i) x[size_t(r) * d + i] += language[size_t(t.row[r]) * d + i];
        }
#pragma omp for schedule(static)
        for (long cell = 0; cell < long(batch) * k; ++cell) std::memset(states + size_t(cell) * d, 0, sizeof(float) * d);
#pragma omp for schedule(static)
        for (int r = 0; r < n; ++r) std::memcpy(states + size_t(slot[r]) * d, x + size_t(r) * d, sizeof(float) * d);
    }
    return 0;
}

// Rows index (rows) of each of `count` self key/value buffers (B, H, capacity, Dh) into new
// ones of the same capacity: only the first `length` positions, the ones a later pass reads.
void polyseq_native_reorder(const float* const* from, float* const* to, int64_t count, const int64_t* index,
                            int64_t rows, int64_t heads, int64_t capacity, int64_t head_dim, int64_t length,
                            int threads) {
    size_t block = size_t(capacity) * head_dim, used = size_t(length) * head_dim;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static) collapse(2)
    for (int64_t tensor = 0; tensor < count; ++tensor)
        for (int64_t row = 0; row < rows; ++row)
            for (int64_t head = 0; head < heads; ++head)
                std::memcpy(to[tensor] + (size_t(row) * heads + head) * block,
                            from[tensor] + (size_t(index[row]) * heads + head) * block, sizeof(float) * used);
}

// The output layer: the decoder's final norm, then logits (N, V) from states (N, D).
int polyseq_native_project(void* handle, const float* states, int64_t rows, float* logits, int threads) {
    Model& m = *static_cast<Model*>(handle);
    std::lock_guard<std::mutex> lock(m.busy);
    m.grow(m.h, size_t(rows) * m.dim);
#pragma omp parallel num_threads(threads) if (threads > 1)
    m.output_logits(states, int(rows), logits, m.vocab);
    return 0;
}

// Greedy's choice fused into the output layer: each row's most likely token (the first of equal
// ones, as torch.argmax) and its log-probability, from states (N, D), without handing the logits
// back.
int polyseq_native_choose(void* handle, const float* states, int64_t rows, int64_t* tokens, float* log_probs,
                          int threads) {
    Model& m = *static_cast<Model*>(handle);
    std::lock_guard<std::mutex> lock(m.busy);
    int vocab = m.vocab, padded = m.padded_vocab();
    float* logits = m.logits_buffer(rows);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        m.output_logits(states, int(rows), logits, padded);
#pragma omp for schedule(static)
        for (int64_t row = 0; row < rows; ++row) {
            const float* x = logits + size_t(row) * padded;
            int best = 0;
            for (int j = 1; j < vocab; ++j) best = x[j] > x[best] ? j : best;
            tokens[row] = best;
            log_probs[row] = -log_sum_exp(x, x[best], vocab);
        }
    }
    return 0;
}

// Beam search's candidates fused into the output layer: each row's `count` most likely tokens
// (most likely first; of equal ones the lower id first) and their log-probabilities, from states
// (N, D), without handing the logits back.
int polyseq_native_top(void* handle, const float* states, int64_t rows, int64_t count, int64_t* tokens,
                       float* log_probs, int threads) {
    Model& m = *static_cast<Model*>(handle);
    std::lock_guard<std::mutex> lock(m.busy);
    int vocab = m.vocab, padded = m.padded_vocab();
    int keep = int(std::min<int64_t>(count, vocab));
    float* logits = m.logits_buffer(rows);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        m.output_logits(states, int(rows), logits, padded);
#pragma omp for schedule(static)
        for (int64_t row = 0; row < rows; ++row) {
            const float* x = logits + size_t(row) * padded;
            int64_t* ids = tokens + row * count;
            float* best = log_probs + row * count;
            int held = 0;  // best[0..held) sorted, highest first
            for (int j = 0; j < vocab; ++j) {
                if (held == keep && !(x[j] > best[held - 1])) continue;
                int at = held < keep ? held++ : keep - 1;
                while (at > 0 && x[j] > best[at - 1]) { best[at] = best[at - 1]; ids[at] = ids[at - 1]; --at; }
                best[at] = x[j];
                ids[at] = j;
            }
            float norm = best[0] + log_sum_exp(x, best[0], vocab);
            for (int i = 0; i < keep; ++i) best[i] -= norm;
            for (int i = keep; i < count; ++i) { ids[i] = 0; best[i] = -INFINITY; }
        }
    }
    return 0;
}

}  // extern "C"
