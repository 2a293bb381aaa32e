/* Licensed under a 3-clause BSD style license - see LICENSE
 *
 * The first cut of `ccdphot_ext.background.outliers`, compiled (internal):
 * the local maxima of rectangles of a frame that stand a given height
 * above the median of their ring of 16 pixels two pixels away, found in
 * one pass over the rectangles (no temporary of the frame's size).
 *
 * A pixel is kept where it is finite and usable (not masked), at least 5
 * of its 8 neighbours and 8 of its 16 ring pixels are (on the frame,
 * finite, not masked), it is larger than each usable neighbour, and it
 * exceeds the median of its usable ring pixels (the mean of the two
 * middle ones for an even count, as numpy.nanmedian) by more than
 * ``cut``: the conditions `outliers._candidates` checks again, exactly,
 * on the few pixels kept.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdlib.h>

static const int NEAR[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1},
                               {0, 1}, {1, -1}, {1, 0}, {1, 1}};
static const int RING[16][2] = {{-2, -2}, {-2, -1}, {-2, 0}, {-2, 1},
                                {-2, 2}, {-1, -2}, {-1, 2}, {0, -2},
                                {0, 2}, {1, -2}, {1, 2}, {2, -2},
                                {2, -1}, {2, 0}, {2, 1}, {2, 2}};

typedef struct {
    const char *base;
    const char *mask;
    npy_intp sy, sx, my, mx, ny, nx;
    int single;
} frame_t;

/* The value of pixel (y, x), NaN off the frame, where masked and where not
 * finite. */
static double
value(const frame_t *f, npy_intp y, npy_intp x)
{
    double v;
    if (y < 0 || x < 0 || y >= f->ny || x >= f->nx) {
        return NAN;
    }
    if (f->mask != NULL && f->mask[y * f->my + x * f->mx]) {
        return NAN;
    }
    v = f->single ? (double)*(const float *)(f->base + y * f->sy + x * f->sx)
                  : *(const double *)(f->base + y * f->sy + x * f->sx);
    return isfinite(v) ? v : NAN;
}

/* Whether (y, x), of value v (finite), passes; see the file's comment. */
static int
passes(const frame_t *f, npy_intp y, npy_intp x, double v, double cut)
{
    double ring[16], lo = INFINITY, med;
    int k, n = 0, i, j;
    for (k = 0; k < 8; k++) {
        double w = value(f, y + NEAR[k][0], x + NEAR[k][1]);
        if (isnan(w)) {
            continue;
        }
        if (w >= v) {
            return 0;
        }
        n++;
    }
    if (n < 5) {
        return 0;
    }
    n = 0;
    for (k = 0; k < 16; k++) {
        double w = value(f, y + RING[k][0], x + RING[k][1]);
        if (!isnan(w)) {
            ring[n++] = w;
            if (w < lo) {
                lo = w;
            }
        }
    }
    /* the median is at least the least: a cheap test first */
    if (n < 8 || !(v - lo > cut)) {
        return 0;
    }
    for (i = 1; i < n; i++) {  /* insertion sort of at most 16 */
        double w = ring[i];
        for (j = i - 1; j >= 0 && ring[j] > w; j--) {
            ring[j + 1] = ring[j];
        }
        ring[j + 1] = w;
    }
    med = n % 2 ? ring[n / 2] : 0.5 * (ring[n / 2 - 1] + ring[n / 2]);
    return v - med > cut;
}

typedef struct {
    npy_intp *data;
    npy_intp n, size;
} list_t;

static int
append(list_t *list, npy_intp value)
{
    if (list->n == list->size) {
        npy_intp size = list->size ? 2 * list->size : 1024;
        npy_intp *data = realloc(list->data, (size_t)size * sizeof(npy_intp));
        if (data == NULL) {
            return -1;
        }
        list->data = data;
        list->size = size;
    }
    list->data[list->n++] = value;
    return 0;
}

/* The side of the tiles a rectangle is scanned in. */
#define TILE 32

/* Whether pixel x of a row is masked. */
#define MASKED(f, y, x) \
    ((f)->mask != NULL && (f)->mask[(y) * (f)->my + (x) * (f)->mx])

/* The local level a tile is first cut against: the third smallest of 36
 * pixels sampled on a 6 x 6 grid of rows [y0, y1) x [x0, x1) (about its
 * 8th percentile; NaN and inf not taken), +inf when fewer are finite. */
#define LOW(TYPE)                                                         \
    static double low_##TYPE(const frame_t *f, npy_intp y0, npy_intp y1,  \
                             npy_intp x0, npy_intp x1)                    \
    {                                                                     \
        double s[3] = {INFINITY, INFINITY, INFINITY};                     \
        npy_intp y, x, sy = (y1 - y0 + 5) / 6, sx = (x1 - x0 + 5) / 6;   \
        sy = sy < 1 ? 1 : sy;                                             \
        sx = sx < 1 ? 1 : sx;                                             \
        for (y = y0 + sy / 2; y < y1; y += sy) {                          \
            const char *row = f->base + y * f->sy;                        \
            for (x = x0 + sx / 2; x < x1; x += sx) {                      \
                double v = *(const TYPE *)(row + x * f->sx);              \
                if (!isfinite(v) || v >= s[2]) {                          \
                    continue;                                             \
                }                                                         \
                if (v < s[0]) {                                           \
                    s[2] = s[1];                                          \
                    s[1] = s[0];                                          \
                    s[0] = v;                                             \
                } else if (v < s[1]) {                                    \
                    s[2] = s[1];                                          \
                    s[1] = v;                                             \
                } else {                                                  \
                    s[2] = v;                                             \
                }                                                         \
            }                                                             \
        }                                                                 \
        return s[2];                                                      \
    }
LOW(float)
LOW(double)

/* A quick test that pixel (y, x), two pixels or more from the frame's
 * edges, can pass: no neighbour (finite, not masked) as large, at least 4
 * ring pixels below v - cut (the median of 8 or more is above the 4th
 * smallest). Reading the pixels directly. */
#define MAY_PASS(TYPE)                                                    \
    static int may_pass_##TYPE(const frame_t *f, npy_intp y, npy_intp x,  \
                               double v, double cut)                     \
    {                                                                     \
        const char *p = f->base + y * f->sy + x * f->sx;                  \
        double t = v - cut;                                               \
        int k, below = 0;                                                 \
        for (k = 0; k < 8; k++) {                                         \
            double w = *(const TYPE *)(p + NEAR[k][0] * f->sy              \
                                       + NEAR[k][1] * f->sx);             \
            if (w >= v && isfinite(w) &&                                  \
                !MASKED(f, y + NEAR[k][0], x + NEAR[k][1])) {             \
                return 0;                                                 \
            }                                                             \
        }                                                                 \
        for (k = 0; k < 16; k++) {                                        \
            double w = *(const TYPE *)(p + RING[k][0] * f->sy              \
                                       + RING[k][1] * f->sx);             \
            below += w < t;                                               \
        }                                                                 \
        return below >= 4;                                                \
    }
MAY_PASS(float)
MAY_PASS(double)

/* At least 4 ring pixels of (y, x) below t (the ring's median, of 8 or
 * more pixels, is above its 4th smallest): read directly, two pixels or
 * more from the frame's edges. */
#define RING_BELOW(TYPE)                                                  \
    static int ring_below_##TYPE(const frame_t *f, npy_intp y,            \
                                 npy_intp x, double t)                    \
    {                                                                     \
        const char *p = f->base + y * f->sy + x * f->sx;                  \
        int k, below = 0;                                                 \
        for (k = 0; k < 16; k++) {                                        \
            below += *(const TYPE *)(p + RING[k][0] * f->sy               \
                                     + RING[k][1] * f->sx) < t;           \
        }                                                                 \
        return below >= 4;                                                \
    }
RING_BELOW(float)
RING_BELOW(double)

/* Ask for pixels x0 <= x < x1 of a row before they are read (the sweep
 * reads the rows of scattered rectangles). */
static void
prefetch_span(const char *row, npy_intp x0, npy_intp x1, npy_intp size)
{
#if defined(__GNUC__) || defined(__clang__)
    npy_intp x;
    for (x = x0; x < x1; x += 64 / size) {
        __builtin_prefetch(row + x * size);
    }
    __builtin_prefetch(row + (x1 - 1) * size);
#else
    (void)row; (void)x0; (void)x1; (void)size;
#endif
}

/* The pixels x0 <= x < x1 of row y that pass, ``above`` the first cut
 * there (`tile_cut`). Without a mask, on contiguous rows and away from
 * the frame's edges, the 8 neighbours (NaN and +inf ones not compared)
 * and the ring (`ring_below`) are read directly before `passes` judges. */
#define SPAN(TYPE)                                                        \
    static int span_##TYPE(const frame_t *f, npy_intp y, npy_intp x0,     \
                           npy_intp x1, double above, double cut,         \
                           list_t *out)                                   \
    {                                                                     \
        npy_intp x, a = x0, b = x0;                                       \
        const char *row = f->base + y * f->sy;                            \
        const TYPE inf = (TYPE)INFINITY;                                  \
        if (f->mask == NULL && f->sx == (npy_intp)sizeof(TYPE) &&         \
            y >= 2 && y + 2 < f->ny) {                                    \
            const TYPE *u = (const TYPE *)(row - f->sy);                  \
            const TYPE *m = (const TYPE *)row;                            \
            const TYPE *d = (const TYPE *)(row + f->sy);                  \
            const TYPE hi = (TYPE)above;                                  \
            a = x0 < 2 ? 2 : x0;                                          \
            b = x1 > f->nx - 2 ? f->nx - 2 : x1;                          \
            if (y + 6 < f->ny) {  /* read by the rings 4 rows on */ \
                prefetch_span(row + 6 * f->sy, a - 2, b + 2,              \
                              (npy_intp)sizeof(TYPE));                    \
            }                                                             \
            for (x = a; x < b; x++) {                                     \
                TYPE v = m[x];                                            \
                if (!(v > hi)) {                                          \
                    continue;                                             \
                }                                                         \
                if (isfinite((double)v) &&                                \
                    (!(m[x - 1] >= v) || m[x - 1] == inf) &&              \
                    (!(m[x + 1] >= v) || m[x + 1] == inf) &&              \
                    (!(u[x - 1] >= v) || u[x - 1] == inf) &&              \
                    (!(u[x] >= v) || u[x] == inf) &&                      \
                    (!(u[x + 1] >= v) || u[x + 1] == inf) &&              \
                    (!(d[x - 1] >= v) || d[x - 1] == inf) &&              \
                    (!(d[x] >= v) || d[x] == inf) &&                      \
                    (!(d[x + 1] >= v) || d[x + 1] == inf) &&              \
                    ring_below_##TYPE(f, y, x, (double)v - cut) &&        \
                    passes(f, y, x, (double)v, cut) &&                    \
                    append(out, y * f->nx + x) < 0) {                     \
                    return -1;                                            \
                }                                                         \
            }                                                             \
            if (a >= b) {                                                 \
                a = b = x0;                                               \
            }                                                             \
        }                                                                 \
        /* the rest of the span, pixel by pixel */                        \
        for (x = x0; x < x1; x++) {                                       \
            double v;                                                     \
            if (x >= a && x < b) {                                        \
                x = b - 1;                                                \
                continue;                                                 \
            }                                                             \
            v = *(const TYPE *)(row + x * f->sx);                         \
            if (!(v > above) || !isfinite(v) || MASKED(f, y, x)) {        \
                continue;                                                 \
            }                                                             \
            if (y >= 2 && y + 2 < f->ny && x >= 2 && x + 2 < f->nx &&     \
                !may_pass_##TYPE(f, y, x, v, cut)) {                      \
                continue;                                                 \
            }                                                             \
            if (passes(f, y, x, v, cut) &&                                \
                append(out, y * f->nx + x) < 0) {                         \
                return -1;                                                \
            }                                                             \
        }                                                                 \
        return 0;                                                         \
    }
SPAN(float)
SPAN(double)

/* The first cut of the frame's tile (ty, tx) of TILE x TILE pixels: its
 * local level (`low`, of the tile grown by 2) + cut - slack, +inf when it
 * has too few finite pixels; worked out once, on demand (``levels``, NaN
 * until then). The tiles are the frame's, so a pixel is cut alike
 * whichever rectangles hold it. */
static double
tile_cut(const frame_t *f, double *levels, npy_intp ntx, npy_intp ty,
         npy_intp tx, double cut, double slack)
{
    double *level = levels + ty * ntx + tx;
    if (isnan(*level)) {
        npy_intp y0 = ty * TILE - 2, y1 = (ty + 1) * TILE + 2;
        npy_intp x0 = tx * TILE - 2, x1 = (tx + 1) * TILE + 2;
        y0 = y0 < 0 ? 0 : y0;
        x0 = x0 < 0 ? 0 : x0;
        y1 = y1 > f->ny ? f->ny : y1;
        x1 = x1 > f->nx ? f->nx : x1;
        *level = f->single ? low_float(f, y0, y1, x0, x1)
                           : low_double(f, y0, y1, x0, x1);
        *level += cut - slack;  /* inf stays inf */
    }
    return *level;
}

typedef struct {
    npy_intp x0, x1;
} interval_t;

static int
by_start(const void *a, const void *b)
{
    npy_intp x = ((const interval_t *)a)->x0;
    npy_intp y = ((const interval_t *)b)->x0;
    return (x > y) - (x < y);
}

/* The pixels of the rectangles (y0, y1, x0, x1 each, on the frame, sorted
 * by y0) that pass: row by row down the frame, each row's covered
 * stretches once (overlaps merged), cut tile by tile. */
static int
sweep(const frame_t *f, const npy_intp *b, npy_intp n, double cut,
      double slack, list_t *out)
{
    npy_intp ntx = (f->nx + TILE - 1) / TILE, nty = (f->ny + TILE - 1) / TILE;
    npy_intp *active = malloc((size_t)(n + 1) * sizeof(npy_intp));
    interval_t *spans = malloc((size_t)(n + 1) * sizeof(interval_t));
    double *levels = malloc((size_t)(ntx * nty + 1) * sizeof(double));
    npy_intp k, y, next = 0, n_active = 0;
    int status = 0;
    if (active == NULL || spans == NULL || levels == NULL) {
        status = -1;
        goto done;
    }
    for (k = 0; k < ntx * nty; k++) {
        levels[k] = NAN;
    }
    y = n ? b[0] : 0;
    while (y < f->ny && (next < n || n_active)) {
        npy_intp j, m = 0, n_spans = 0;
        while (next < n && b[4 * next] <= y) {
            if (b[4 * next + 1] > y && b[4 * next + 3] > b[4 * next + 2]) {
                active[n_active++] = next;
            }
            next++;
        }
        for (j = 0, k = 0; k < n_active; k++) {  /* drop the finished */
            if (b[4 * active[k] + 1] > y) {
                active[j++] = active[k];
            }
        }
        n_active = j;
        if (!n_active) {
            if (next >= n) {
                break;
            }
            y = b[4 * next];
            continue;
        }
        for (k = 0; k < n_active; k++) {
            spans[m].x0 = b[4 * active[k] + 2];
            spans[m++].x1 = b[4 * active[k] + 3];
        }
        qsort(spans, (size_t)m, sizeof(interval_t), by_start);
        for (k = 1; k < m; k++) {  /* merge the overlapping */
            if (spans[k].x0 <= spans[n_spans].x1) {
                if (spans[k].x1 > spans[n_spans].x1) {
                    spans[n_spans].x1 = spans[k].x1;
                }
            } else {
                spans[++n_spans] = spans[k];
            }
        }
        n_spans++;
        for (k = 0; k < n_spans; k++) {
            npy_intp x = spans[k].x0;
            while (x < spans[k].x1) {
                npy_intp tx = x / TILE, stop = (tx + 1) * TILE;
                double above = tile_cut(f, levels, ntx, y / TILE, tx, cut,
                                        slack);
                stop = stop < spans[k].x1 ? stop : spans[k].x1;
                if (above != INFINITY &&
                    (f->single ? span_float(f, y, x, stop, above, cut, out)
                               : span_double(f, y, x, stop, above, cut,
                                             out)) < 0) {
                    status = -1;
                    goto done;
                }
                x = stop;
            }
        }
        y++;
    }
done:
    free(active);
    free(spans);
    free(levels);
    return status;
}

static PyObject *
peaks(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *mask_obj, *boxes_obj;
    PyArrayObject *data, *mask = NULL, *boxes = NULL, *result = NULL;
    double cut, slack;
    frame_t f;
    list_t out = {NULL, 0, 0};
    npy_intp k, n, dims[1];
    int failed = 0;
    if (!PyArg_ParseTuple(args, "O!OOdd", &PyArray_Type, &data_obj,
                          &mask_obj, &boxes_obj, &cut, &slack)) {
        return NULL;
    }
    data = (PyArrayObject *)data_obj;
    if (PyArray_NDIM(data) != 2 || !PyArray_ISALIGNED(data) ||
        !PyArray_ISNOTSWAPPED(data) ||
        (PyArray_TYPE(data) != NPY_DOUBLE &&
         PyArray_TYPE(data) != NPY_FLOAT)) {
        PyErr_SetString(PyExc_TypeError,
                        "data must be an aligned 2-D float32 or float64 "
                        "array in native byte order");
        return NULL;
    }
    f.base = PyArray_DATA(data);
    f.sy = PyArray_STRIDE(data, 0);
    f.sx = PyArray_STRIDE(data, 1);
    f.ny = PyArray_DIM(data, 0);
    f.nx = PyArray_DIM(data, 1);
    f.single = PyArray_TYPE(data) == NPY_FLOAT;
    f.mask = NULL;
    f.my = f.mx = 0;
    if (mask_obj != Py_None) {
        mask = (PyArrayObject *)PyArray_FROMANY(mask_obj, NPY_BOOL, 2, 2,
                                                NPY_ARRAY_ALIGNED);
        if (mask == NULL) {
            return NULL;
        }
        if (PyArray_DIM(mask, 0) != f.ny || PyArray_DIM(mask, 1) != f.nx) {
            PyErr_SetString(PyExc_ValueError,
                            "mask must have the shape of data");
            goto done;
        }
        f.mask = PyArray_DATA(mask);
        f.my = PyArray_STRIDE(mask, 0);
        f.mx = PyArray_STRIDE(mask, 1);
    }
    boxes = (PyArrayObject *)PyArray_FROMANY(boxes_obj, NPY_INTP, 2, 2,
                                             NPY_ARRAY_IN_ARRAY);
    if (boxes == NULL) {
        goto done;
    }
    if (PyArray_DIM(boxes, 1) != 4) {
        PyErr_SetString(PyExc_ValueError, "boxes must be (n, 4)");
        goto done;
    }
    n = PyArray_DIM(boxes, 0);
    {
        const npy_intp *b = PyArray_DATA(boxes);
        for (k = 0; k < n; k++) {
            if (b[4 * k] < 0 || b[4 * k + 2] < 0 || b[4 * k + 1] > f.ny ||
                b[4 * k + 3] > f.nx || (k && b[4 * k] < b[4 * k - 4])) {
                PyErr_SetString(PyExc_ValueError,
                                "boxes must lie on the frame, sorted by y0");
                goto done;
            }
        }
        Py_BEGIN_ALLOW_THREADS
        failed = sweep(&f, b, n, cut, slack, &out) < 0;
        Py_END_ALLOW_THREADS
    }
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    dims[0] = out.n;
    result = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INTP);
    if (result != NULL) {
        npy_intp *r = PyArray_DATA(result);
        for (k = 0; k < out.n; k++) {
            r[k] = out.data[k];
        }
    }
done:
    free(out.data);
    Py_XDECREF(mask);
    Py_XDECREF(boxes);
    return (PyObject *)result;
}

static PyMethodDef methods[] = {
    {"peaks", peaks, METH_VARARGS,
     "peaks(data, mask, boxes, cut, slack)\n--\n\n"
     "The flat indices (increasing) of the pixels of the rectangles "
     "``boxes`` (rows y0, y1, x0, x1, stops exclusive, on the frame, "
     "sorted by y0) that are usable local maxima more than ``cut`` above "
     "the median of their usable ring of 16 pixels, among those more "
     "than ``cut - slack`` above their tile's local level."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sharp",
    "The first cut of the sharp-pixel search, compiled (internal).", -1,
    methods
};

PyMODINIT_FUNC
PyInit__sharp(void)
{
    import_array();
    return PyModule_Create(&module);
}
