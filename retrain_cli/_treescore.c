/* Exact scoring of LightGBM's numerical trees with QuickScorer (Lucchese et al., SIGIR 2015).
 *
 * LightGBM walks every tree node by node, a data-dependent branch per level. QuickScorer visits,
 * per row and feature, only the nodes whose test is false, in one sorted list per feature, and
 * ANDs each one's leaf mask into its tree's bitvector; the exit leaf of a tree is then the
 * leftmost leaf still set. Same leaves, same leaf values, summed in LightGBM's tree order, so
 * the scores are bitwise LightGBM's. retrain_cli/trainers/tree_scoring.py builds the tables and
 * decides which models qualify (numerical splits only); see its docstring for the rules.
 *
 * score(columns, start, stop, out, thresholds, node_tree, node_masks, node_offsets,
 *       nan_tree, nan_masks, nan_offsets, init_masks, leaf_values, leaf_offsets, words,
 *       transform, simd)
 *
 * columns: one float64 buffer per feature; rows [start, stop) are scored into out[start:stop].
 * Nodes are grouped by feature (offsets, n_features + 1) and sorted by threshold; a node's mask
 * clears the leaves of its left subtree (the test "x <= threshold" was false). NaN inputs use
 * their own per-feature list of the nodes that send NaN right. The GIL is released while scoring.
 *
 * Rows go eight at a time in AVX-512 lanes where the CPU has them (`AVX512`, checked at import)
 * and `simd` is true, for trees of up to 64 leaves; otherwise two at a time in scalar code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_PATH 1
#endif

static int avx512 = 0; /* the CPU runs AVX-512 (set once, at import) */

/* LightGBM's kZeroThreshold: its dense input treats |x| <= 1e-35f as an absent value, 0.0 */
static const double kZeroThreshold = 1e-35f;

typedef struct {
    const double *thresholds;
    const int32_t *node_tree;
    const uint64_t *node_masks;
    const int64_t *node_offsets;
    const int32_t *nan_tree;
    const uint64_t *nan_masks;
    const int64_t *nan_offsets;
    const uint64_t *init_masks;
    const double *leaf_values;
    const int64_t *leaf_offsets;
    Py_ssize_t n_trees;
    Py_ssize_t words;
    int transform; /* 0: the raw score; 1: 1 / (1 + exp(-raw)), LightGBM's binary output */
    int simd;      /* eight rows at a time with AVX-512 */
} Model;

static inline __attribute__((always_inline)) void apply(uint64_t *v, const int32_t *tree,
                                                        const uint64_t *masks, int64_t k,
                                                        Py_ssize_t words) {
    uint64_t *target = v + (Py_ssize_t)tree[k] * words;
    const uint64_t *mask = masks + k * words;
    for (Py_ssize_t w = 0; w < words; w++) target[w] &= mask[w];
}

/* One feature's value of one row: clear the leaves its false nodes rule out. */
static inline __attribute__((always_inline)) void visit(const Model *m, uint64_t *v,
                                                        Py_ssize_t f, double x,
                                                        const Py_ssize_t words) {
    if (isnan(x)) {
        for (int64_t k = m->nan_offsets[f]; k < m->nan_offsets[f + 1]; k++)
            apply(v, m->nan_tree, m->nan_masks, k, words);
        return;
    }
    if (fabs(x) <= kZeroThreshold) x = 0.0;
    const int64_t end = m->node_offsets[f + 1];
    for (int64_t k = m->node_offsets[f]; k < end && x > m->thresholds[k]; k++)
        apply(v, m->node_tree, m->node_masks, k, words);
}

/* LightGBM's ConvertOutput: the raw score, or the binary objective's sigmoid (libm's exp, as
 * LightGBM's). */
static inline double output(const Model *m, double sum) {
    return m->transform == 1 ? 1.0 / (1.0 + exp(-sum)) : sum;
}

static inline __attribute__((always_inline)) void finish(const Model *m, const uint64_t *v,
                                                         double *out, const Py_ssize_t words) {
    double sum = 0.0;
    for (Py_ssize_t t = 0; t < m->n_trees; t++) {
        const uint64_t *bits = v + t * words;
        Py_ssize_t w = 0;
        while (bits[w] == 0) w++; /* the exit leaf's bit is never cleared */
        const int64_t leaf = (int64_t)w * 64 + __builtin_ctzll(bits[w]);
        sum += m->leaf_values[m->leaf_offsets[t] + leaf];
    }
    *out = output(m, sum);
}

/* Rows go two at a time: for each feature both rows share the scan of the nodes false for
 * both (the lower value's), then the higher value goes on alone. `words` is a parameter so
 * that the compiler can specialise the loops for one word. */
static inline __attribute__((always_inline)) void score_rows(
    const Model *m, const double *const *columns, Py_ssize_t n_features, Py_ssize_t start,
    Py_ssize_t stop, double *out, uint64_t *v, const Py_ssize_t words) {
    const Py_ssize_t size = m->n_trees * words;
    uint64_t *va = v, *vb = v + size;
    Py_ssize_t row = start;
    for (; row + 1 < stop; row += 2) {
        memcpy(va, m->init_masks, (size_t)size * sizeof(uint64_t));
        memcpy(vb, m->init_masks, (size_t)size * sizeof(uint64_t));
        for (Py_ssize_t f = 0; f < n_features; f++) {
            double xa = columns[f][row], xb = columns[f][row + 1];
            if (isnan(xa) || isnan(xb)) {
                visit(m, va, f, xa, words);
                visit(m, vb, f, xb, words);
                continue;
            }
            if (fabs(xa) <= kZeroThreshold) xa = 0.0;
            if (fabs(xb) <= kZeroThreshold) xb = 0.0;
            const double lo = xa < xb ? xa : xb, hi = xa < xb ? xb : xa;
            uint64_t *vh = xa < xb ? vb : va;
            const int64_t end = m->node_offsets[f + 1];
            int64_t k = m->node_offsets[f];
            for (; k < end && lo > m->thresholds[k]; k++) {
                apply(va, m->node_tree, m->node_masks, k, words);
                apply(vb, m->node_tree, m->node_masks, k, words);
            }
            for (; k < end && hi > m->thresholds[k]; k++)
                apply(vh, m->node_tree, m->node_masks, k, words);
        }
        finish(m, va, out + row, words);
        finish(m, vb, out + row + 1, words);
    }
    if (row < stop) {
        memcpy(va, m->init_masks, (size_t)size * sizeof(uint64_t));
        for (Py_ssize_t f = 0; f < n_features; f++) visit(m, va, f, columns[f][row], words);
        finish(m, va, out + row, words);
    }
}

#ifdef HAVE_AVX512_PATH
enum { LANES = 8 };

/* AND `mask` into the bitvectors at p of the lanes set in `lanes`. */
__attribute__((target("avx512f"), always_inline)) static inline void and_lanes(
    uint64_t *p, __mmask8 lanes, uint64_t mask) {
    const __m512i bits = _mm512_loadu_si512(p);
    _mm512_storeu_si512(p, _mm512_mask_and_epi64(bits, lanes, bits,
                                                 _mm512_set1_epi64((long long)mask)));
}

/* Eight rows at once, one per AVX-512 lane, for trees of up to 64 leaves: each feature's node
 * list is read once for the eight rows, and a node's mask is ANDed into the bitvectors of the
 * lanes whose value is above its threshold. v holds n_trees x 8 bitvectors. */
__attribute__((target("avx512f"))) static void score_lanes(const Model *m,
                                                            const double *const *columns,
                                                            Py_ssize_t n_features,
                                                            Py_ssize_t row, double *out,
                                                            uint64_t *v) {
    for (Py_ssize_t t = 0; t < m->n_trees; t++)
        _mm512_storeu_si512(v + t * LANES, _mm512_set1_epi64((long long)m->init_masks[t]));
    const __m512d zero_band = _mm512_set1_pd(kZeroThreshold);
    for (Py_ssize_t f = 0; f < n_features; f++) {
        __m512d x = _mm512_loadu_pd(columns[f] + row);
        const __mmask8 nan = _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q);
        const __mmask8 tiny = _mm512_cmp_pd_mask(_mm512_abs_pd(x), zero_band, _CMP_LE_OQ);
        x = _mm512_mask_mov_pd(x, tiny, _mm512_setzero_pd());
        if (nan) {
            for (int64_t k = m->nan_offsets[f]; k < m->nan_offsets[f + 1]; k++)
                and_lanes(v + (Py_ssize_t)m->nan_tree[k] * LANES, nan, m->nan_masks[k]);
            /* a NaN lane is above no threshold: the sorted list leaves it alone */
            x = _mm512_mask_mov_pd(x, nan, _mm512_set1_pd(-INFINITY));
        }
        const int64_t end = m->node_offsets[f + 1];
        for (int64_t k = m->node_offsets[f]; k < end; k++) {
            const __mmask8 above =
                _mm512_cmp_pd_mask(x, _mm512_set1_pd(m->thresholds[k]), _CMP_GT_OQ);
            if (!above) break;
            and_lanes(v + (Py_ssize_t)m->node_tree[k] * LANES, above, m->node_masks[k]);
        }
    }
    for (int lane = 0; lane < LANES; lane++) {
        double sum = 0.0;
        for (Py_ssize_t t = 0; t < m->n_trees; t++)
            sum += m->leaf_values[m->leaf_offsets[t] + __builtin_ctzll(v[t * LANES + lane])];
        out[row + lane] = output(m, sum);
    }
}
#endif

static void score_model(const Model *m, const double *const *columns, Py_ssize_t n_features,
                        Py_ssize_t start, Py_ssize_t stop, double *out, uint64_t *v) {
#ifdef HAVE_AVX512_PATH
    if (m->words == 1 && m->simd && avx512) {
        for (; start + LANES <= stop; start += LANES)
            score_lanes(m, columns, n_features, start, out, v);
    }
#endif
    if (m->words == 1) /* up to 64 leaves a tree, the common case */
        score_rows(m, columns, n_features, start, stop, out, v, 1);
    else
        score_rows(m, columns, n_features, start, stop, out, v, m->words);
}

/* A contiguous, read-only buffer of `count` items of `itemsize` bytes. */
static int get_array(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t count,
                     const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len % itemsize != 0 || (count >= 0 && view->len / itemsize < count)) {
        PyErr_Format(PyExc_ValueError, "%s is too short", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

enum { N_TABLES = 11 };

static PyObject *score(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *columns_obj, *tables[N_TABLES];
    Py_ssize_t start, stop, words;
    int transform, simd;
    PyObject *out_obj;
    if (!PyArg_ParseTuple(args, "OnnOOOOOOOOOOOnip", &columns_obj, &start, &stop, &out_obj,
                          &tables[0], &tables[1], &tables[2], &tables[3], &tables[4], &tables[5],
                          &tables[6], &tables[7], &tables[8], &tables[9], &words, &transform,
                          &simd))
        return NULL;
    tables[10] = out_obj;
    if (!PyTuple_Check(columns_obj)) {
        PyErr_SetString(PyExc_TypeError, "columns must be a tuple of float64 buffers");
        return NULL;
    }
    const Py_ssize_t n_features = PyTuple_GET_SIZE(columns_obj);
    if (start < 0 || stop < start || words < 1) {
        PyErr_SetString(PyExc_ValueError, "bad row range or word count");
        return NULL;
    }

    static const char *names[N_TABLES] = {
        "thresholds", "node_tree",  "node_masks",  "node_offsets", "nan_tree", "nan_masks",
        "nan_offsets", "init_masks", "leaf_values", "leaf_offsets", "out"};
    static const Py_ssize_t sizes[N_TABLES] = {8, 4, 8, 8, 4, 8, 8, 8, 8, 8, 8};
    Py_buffer views[N_TABLES];
    Py_buffer *column_views = PyMem_Calloc((size_t)(n_features ? n_features : 1),
                                           sizeof(Py_buffer));
    const double **columns = PyMem_Calloc((size_t)(n_features ? n_features : 1),
                                          sizeof(double *));
    int got = 0, got_columns = 0;
    PyObject *result = NULL;
    uint64_t *v = NULL;
    if (column_views == NULL || columns == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < N_TABLES; got++) {
        Py_ssize_t count = -1;
        if (got == 3 || got == 6) count = n_features + 1; /* offsets */
        if (got == 10) count = stop;                      /* out */
        if (get_array(tables[got], &views[got], sizes[got], count, names[got]) < 0) goto done;
    }
    for (; got_columns < n_features; got_columns++) {
        PyObject *column = PyTuple_GET_ITEM(columns_obj, got_columns);
        if (get_array(column, &column_views[got_columns], 8, stop, "a column") < 0) goto done;
        columns[got_columns] = column_views[got_columns].buf;
    }
    if (views[10].readonly) {
        PyErr_SetString(PyExc_ValueError, "out is read-only");
        goto done;
    }

    Model m = {
        .thresholds = views[0].buf,
        .node_tree = views[1].buf,
        .node_masks = views[2].buf,
        .node_offsets = views[3].buf,
        .nan_tree = views[4].buf,
        .nan_masks = views[5].buf,
        .nan_offsets = views[6].buf,
        .init_masks = views[7].buf,
        .leaf_values = views[8].buf,
        .leaf_offsets = views[9].buf,
        .n_trees = views[9].len / 8,
        .words = words,
        .transform = transform,
        .simd = simd,
    };
    if (views[7].len / 8 != m.n_trees * words) {
        PyErr_SetString(PyExc_ValueError, "init_masks must hold one bitvector per tree");
        goto done;
    }
    v = malloc((size_t)(8 * m.n_trees * words + 1) * sizeof(uint64_t)); /* up to 8 rows */
    if (v == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *out = views[10].buf;
    Py_BEGIN_ALLOW_THREADS
    score_model(&m, columns, n_features, start, stop, out, v);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);

done:
    free(v);
    for (int i = 0; i < got_columns; i++) PyBuffer_Release(&column_views[i]);
    for (int i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(column_views);
    PyMem_Free(columns);
    return result;
}

static PyMethodDef methods[] = {
    {"score", score, METH_VARARGS,
     "Score rows [start, stop) of float64 columns into out with QuickScorer tables."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_treescore",
    .m_doc = "QuickScorer for LightGBM's numerical trees (see retrain_cli.trainers.tree_scoring).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__treescore(void) {
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL) return NULL;
#ifdef HAVE_AVX512_PATH
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
#endif
    if (PyModule_AddObjectRef(mod, "AVX512", avx512 ? Py_True : Py_False) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
