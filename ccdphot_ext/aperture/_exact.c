/* Licensed under a 3-clause BSD style license - see LICENSE
 *
 * Exact overlaps of circles with pixels, and the weighted sums of whole
 * windows, compiled (internal; `ccdphot_ext.aperture.circular` and the
 * ellipse engine call it).
 *
 * Each pixel gets the operations of the numpy reference
 * (`ccdphot_ext.aperture.quadrant`, `circular._Conic.weights`) in the same
 * order, so the weights agree with it to the last bit where every arc is
 * short enough for the series in the tangent (all boundary pixels of a
 * circle of radius 3 or more: products, sums, quotients and square
 * roots only), and elsewhere wherever the platform's atan2 and sin agree
 * with numpy's (otherwise to a few units in the last place). A window's
 * boundary pixels are gathered as rectangles and computed together, two
 * at a time with SSE2 on x86-64 (the same operations on each lane, so the
 * same bits). The sums add their terms as numpy's pairwise summation
 * does (`np.add.reduce` over a window's row-major pixels), so a window's
 * sums are those of the numpy route given the same weights.
 *
 * Pixel convention (as photutils): pixel i spans i - 0.5 ... i + 0.5.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this angle, angle - sin(angle) is its Taylor series (as
 * quadrant.angle_minus_sine; the coefficients are its doubles). */
#define SERIES_ANGLE 0.25

/* Below this tangent of half the angle, angle - sin(angle) is a series in
 * the tangent (as quadrant.segment_series and its SERIES_TANGENT and
 * TANGENT_COEFFS: the same doubles, added in the same order). */
#define SERIES_TANGENT 0.25
#define N_TANGENT_COEFFS 14
static const double TANGENT_COEFFS[N_TANGENT_COEFFS] = {
    2.0 / 3.0, -4.0 / 5.0, 6.0 / 7.0, -8.0 / 9.0, 10.0 / 11.0,
    -12.0 / 13.0, 14.0 / 15.0, -16.0 / 17.0, 18.0 / 19.0, -20.0 / 21.0,
    22.0 / 23.0, -24.0 / 25.0, 26.0 / 27.0, -28.0 / 29.0};

static double
angle_minus_sine(double angle)
{
    double a2 = angle * angle, out;
    if (angle >= SERIES_ANGLE) {
        return angle - sin(angle);
    }
    out = a2 * -1.6059043836821613e-10;
    out += 2.505210838544172e-08;
    out *= a2;
    out += -2.7557319223985893e-06;
    out *= a2;
    out += 0.0001984126984126984;
    out *= a2;
    out += -0.008333333333333333;
    out *= a2;
    out += 0.16666666666666666;
    out *= a2;
    return out * angle;
}

/* np.maximum and np.minimum of two numbers (inline: fmax and fmin are
 * library calls). */
static inline double
max2(double a, double b)
{
    return a > b ? a : b;
}

static inline double
min2(double a, double b)
{
    return a < b ? a : b;
}

/* quadrant.segment_series: angle - sin(angle), times 0.5, from the
 * tangent t of half the angle. */
static inline double
segment_series(double t)
{
    double z = t * t, p = TANGENT_COEFFS[N_TANGENT_COEFFS - 1];
    int k;
    for (k = N_TANGENT_COEFFS - 2; k >= 0; k--) {
        p = p * z + TANGENT_COEFFS[k];
    }
    return (t * z) * p;
}

/* The terms of quadrant.quadrant_area that come before the segment, for
 * one rectangle: the arc's ends a, b (clipped to the rectangle), d = b - a,
 * the half-heights sa, sb there, the sine of the angle between the radii
 * to a and b (times r**2) as num / den, its cosine (times r**2) and the
 * tangent t of half the angle. Where the arc does not cross the
 * rectangle, d == 0 and the arc's terms are zeros. */
typedef struct {
    double a, b, d, sa, sb, den, num, cosine, t;
} arc_t;

static inline arc_t
arc_terms(double r, double xl, double xh, double s_lo, double s_hi)
{
    arc_t c;
    c.a = min2(max2(s_hi, xl), xh);
    c.b = min2(max2(s_lo, xl), xh);
    c.d = c.b - c.a;
    c.sa = sqrt(max2((r - c.a) * (r + c.a), 0.0));
    c.sb = sqrt(max2((r - c.b) * (r + c.b), 0.0));
    c.den = max2(c.b * c.sa + c.a * c.sb, 1e-300);
    c.num = ((c.a + c.b) * c.d) * (r * r);
    c.cosine = c.sa * c.sb + c.a * c.b;
    c.t = c.num / (c.den * ((r * r) + c.cosine));
    return c;
}

/* quadrant.quadrant_area from the arc's terms and its segment: the
 * trapezoid under the chord, the full height left of the arc, minus yl
 * under the arc. */
static inline double
rect_area(const arc_t *c, double seg, double xl, double yl, double yh)
{
    seg += ((c->sa + c->sb) * c->d) * 0.5;
    seg += (c->a - xl) * (yh - yl);
    return seg - c->d * yl;
}

/* The rectangles of a window's boundary pixels (each pixel's folded part,
 * then its mirrored parts across an axis), as arrays: one per argument of
 * quadrant_area, the pixel each belongs to, and room for its area and
 * its tangent. */
typedef struct {
    double *xl, *xh, *yl, *yh, *s_lo, *s_hi, *area, *tangent;
    npy_intp *pixel;
    npy_intp n, size;
} rects_t;

/* Room for size rectangles (q->n = 0); -1 when out of memory. */
static int
rects_alloc(rects_t *q, npy_intp size)
{
    double *buf = malloc((size_t)size * (8 * sizeof(double)
                                         + sizeof(npy_intp)));
    if (buf == NULL) {
        return -1;
    }
    q->xl = buf;
    q->xh = buf + size;
    q->yl = buf + 2 * size;
    q->yh = buf + 3 * size;
    q->s_lo = buf + 4 * size;
    q->s_hi = buf + 5 * size;
    q->area = buf + 6 * size;
    q->tangent = buf + 7 * size;
    q->pixel = (npy_intp *)(buf + 8 * size);
    q->n = 0;
    q->size = size;
    return 0;
}

/* Room for the rectangles of a circle's ny x nx window: its boundary
 * pixels are about 2 (nx + ny) (more rooms are made if needed). */
static int
rects_alloc_window(rects_t *q, npy_intp ny, npy_intp nx)
{
    return rects_alloc(q, 4 * (nx + ny) + 16);
}

static void
rects_free(rects_t *q)
{
    free(q->xl);
}

/* Room for at least need rectangles, keeping those made; -1 when out of
 * memory (q unchanged). */
static int
rects_reserve(rects_t *q, npy_intp need)
{
    rects_t more;
    if (need <= q->size) {
        return 0;
    }
    if (rects_alloc(&more, 2 * need) < 0) {
        return -1;
    }
    more.n = q->n;
    memcpy(more.xl, q->xl, (size_t)q->n * sizeof(double));
    memcpy(more.xh, q->xh, (size_t)q->n * sizeof(double));
    memcpy(more.yl, q->yl, (size_t)q->n * sizeof(double));
    memcpy(more.yh, q->yh, (size_t)q->n * sizeof(double));
    memcpy(more.s_lo, q->s_lo, (size_t)q->n * sizeof(double));
    memcpy(more.s_hi, q->s_hi, (size_t)q->n * sizeof(double));
    memcpy(more.pixel, q->pixel, (size_t)q->n * sizeof(npy_intp));
    rects_free(q);
    *q = more;
    return 0;
}

static inline void
rects_add(rects_t *q, npy_intp pixel, double xl, double xh, double yl,
          double yh, double s_lo, double s_hi)
{
    npy_intp k = q->n++;
    q->pixel[k] = pixel;
    q->xl[k] = xl;
    q->xh[k] = xh;
    q->yl[k] = yl;
    q->yh[k] = yh;
    q->s_lo[k] = s_lo;
    q->s_hi[k] = s_hi;
}

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
/* Two rectangles at a time: arc_terms, the series and rect_area in SSE2
 * (present on every x86-64 CPU), operation by operation; packed IEEE
 * operations round as the scalar ones, and _mm_max_pd / _mm_min_pd
 * select as max2 / min2, so each lane gets the scalar code's bits.
 * Returns the rectangles done (an even number). */
static npy_intp
series_areas_sse2(double r, rects_t *q)
{
    const __m128d vr = _mm_set1_pd(r), r2 = _mm_set1_pd(r * r);
    const __m128d zero = _mm_setzero_pd(), tiny = _mm_set1_pd(1e-300);
    const __m128d half = _mm_set1_pd(0.5);
    npy_intp k;
    for (k = 0; k + 2 <= q->n; k += 2) {
        __m128d xl = _mm_loadu_pd(q->xl + k), xh = _mm_loadu_pd(q->xh + k);
        __m128d yl = _mm_loadu_pd(q->yl + k), yh = _mm_loadu_pd(q->yh + k);
        __m128d a = _mm_min_pd(_mm_max_pd(_mm_loadu_pd(q->s_hi + k), xl),
                               xh);
        __m128d b = _mm_min_pd(_mm_max_pd(_mm_loadu_pd(q->s_lo + k), xl),
                               xh);
        __m128d d = _mm_sub_pd(b, a);
        __m128d sa = _mm_sqrt_pd(_mm_max_pd(
            _mm_mul_pd(_mm_sub_pd(vr, a), _mm_add_pd(vr, a)), zero));
        __m128d sb = _mm_sqrt_pd(_mm_max_pd(
            _mm_mul_pd(_mm_sub_pd(vr, b), _mm_add_pd(vr, b)), zero));
        __m128d den = _mm_max_pd(
            _mm_add_pd(_mm_mul_pd(b, sa), _mm_mul_pd(a, sb)), tiny);
        __m128d num = _mm_mul_pd(_mm_mul_pd(_mm_add_pd(a, b), d), r2);
        __m128d cosine = _mm_add_pd(_mm_mul_pd(sa, sb), _mm_mul_pd(a, b));
        __m128d t = _mm_div_pd(num,
                               _mm_mul_pd(den, _mm_add_pd(r2, cosine)));
        __m128d z = _mm_mul_pd(t, t);
        __m128d p = _mm_set1_pd(TANGENT_COEFFS[N_TANGENT_COEFFS - 1]);
        __m128d seg;
        int c;
        for (c = N_TANGENT_COEFFS - 2; c >= 0; c--) {
            p = _mm_add_pd(_mm_mul_pd(p, z), _mm_set1_pd(TANGENT_COEFFS[c]));
        }
        seg = _mm_mul_pd(_mm_mul_pd(_mm_mul_pd(t, z), p), r2);
        seg = _mm_add_pd(seg, _mm_mul_pd(_mm_mul_pd(_mm_add_pd(sa, sb), d),
                                         half));
        seg = _mm_add_pd(seg, _mm_mul_pd(_mm_sub_pd(a, xl),
                                         _mm_sub_pd(yh, yl)));
        _mm_storeu_pd(q->area + k, _mm_sub_pd(seg, _mm_mul_pd(d, yl)));
        _mm_storeu_pd(q->tangent + k, t);
    }
    return k;
}
#endif

/* quadrant.quadrant_area of every rectangle, into q->area: all of them by
 * the series first (no branch: SSE2 takes two at a time where the CPU
 * has it), then again with atan2 and sin those whose arc is too long for
 * the series. */
static void
quadrant_areas(double r, rects_t *q)
{
    npy_intp k = 0;
#if defined(__SSE2__) || defined(_M_X64)
    k = series_areas_sse2(r, q);
#endif
    for (; k < q->n; k++) {
        arc_t c = arc_terms(r, q->xl[k], q->xh[k], q->s_lo[k], q->s_hi[k]);
        q->tangent[k] = c.t;
        q->area[k] = rect_area(&c, segment_series(c.t) * (r * r), q->xl[k],
                               q->yl[k], q->yh[k]);
    }
    for (k = 0; k < q->n; k++) {
        if (!(q->tangent[k] < SERIES_TANGENT)) {
            arc_t c = arc_terms(r, q->xl[k], q->xh[k], q->s_lo[k],
                                q->s_hi[k]);
            double seg = angle_minus_sine(atan2(c.num / c.den, c.cosine));
            seg *= (0.5 * r) * r;
            q->area[k] = rect_area(&c, seg, q->xl[k], q->yl[k], q->yh[k]);
        }
    }
}

/* quadrant._fold of one interval. */
typedef struct {
    double low, high, half;
    int split;
} fold_t;

static fold_t
fold(double lo, double hi)
{
    fold_t f;
    f.low = max2(max2(lo, -hi), 0.0);
    f.high = max2(hi, -lo);
    f.split = (lo < 0) && (hi > 0);
    f.half = min2(hi, -lo);
    return f;
}

static double
half_width(double r, double y)
{
    return sqrt(max2((r - y) * (r + y), 0.0));
}

static double
clip(double x, double lo, double hi)
{
    return min2(max2(x, lo), hi);
}

/* The ny x nx overlaps of a circle of radius r whose window's first pixel
 * centre is at (-u, -v) from its centre, into w (row-major): rows by
 * quadrant.circle_ranges; boundary pixels by quadrant_area plus their
 * mirrored parts (quadrant.circle_splits), added in that order and
 * clipped to [0, 1], their rectangles gathered into q and computed
 * together (quadrant_areas). */
static int
circle_window(double r, double u, double v, npy_intp ny, npy_intp nx,
              double *w, rects_t *q)
{
    npy_intp j, i, k;
    memset(w, 0, (size_t)(ny * nx) * sizeof(double));
    q->n = 0;
    for (j = 0; j < ny; j++) {
        fold_t fy = fold(((double)j - 0.5) - v, ((double)j + 0.5) - v);
        double s_lo = half_width(r, fy.low), s_hi = half_width(r, fy.high);
        double s_half = half_width(r, fy.half);
        double out_lo = 0, out_hi = 0, in_lo, in_hi;
        double *row = w + j * nx;
        if (fy.low < r) {
            out_lo = clip(floor((u - 0.5) - s_lo) + 1, 0, (double)nx);
            out_hi = clip(ceil((s_lo + u) + 0.5), out_lo, (double)nx);
        }
        in_lo = out_lo;
        in_hi = out_lo;
        if (fy.high < r) {
            in_lo = clip(ceil((-s_hi + 0.5) + u), out_lo, out_hi);
            in_hi = clip(floor((s_hi - 0.5) + u) + 1, in_lo, out_hi);
        }
        for (i = (npy_intp)in_lo; i < (npy_intp)in_hi; i++) {
            row[i] = 1.0;
        }
        /* at most four rectangles per pixel */
        if (rects_reserve(q, q->n + 4 * ((npy_intp)out_hi
                                         - (npy_intp)out_lo)) < 0) {
            return -1;
        }
        for (i = (npy_intp)out_lo; i < (npy_intp)out_hi; i++) {
            fold_t fx;
            npy_intp p;
            if (i == (npy_intp)in_lo) {
                i = (npy_intp)in_hi;
                if (i >= (npy_intp)out_hi) {
                    break;
                }
            }
            fx = fold(((double)i - 0.5) - u, ((double)i + 0.5) - u);
            p = j * nx + i;
            rects_add(q, p, fx.low, fx.high, fy.low, fy.high, s_lo, s_hi);
            if (fx.split) {
                rects_add(q, p, 0.0, fx.half, fy.low, fy.high, s_lo, s_hi);
            }
            if (fy.split) {
                rects_add(q, p, fx.low, fx.high, 0.0, fy.half, r, s_half);
            }
            if (fx.split && fy.split) {
                rects_add(q, p, 0.0, fx.half, 0.0, fy.half, r, s_half);
            }
        }
    }
    quadrant_areas(r, q);
    /* each pixel's parts added in the order above (0 + area is area; a
     * -0 becomes +0, as clip makes it) */
    for (k = 0; k < q->n; k++) {
        w[q->pixel[k]] += q->area[k];
    }
    for (k = 0; k < q->n; k++) {
        w[q->pixel[k]] = clip(w[q->pixel[k]], 0.0, 1.0);
    }
    return 0;
}

/* numpy's pairwise summation of n contiguous doubles (as np.add.reduce
 * over a contiguous axis: blocks of at most 128 in eight accumulators). */
static double
pairwise_sum(const double *a, npy_intp n)
{
    if (n < 8) {
        double res = -0.0;
        npy_intp i;
        for (i = 0; i < n; i++) {
            res += a[i];
        }
        return res;
    }
    else if (n <= 128) {
        double r[8], res;
        npy_intp i, k;
        for (k = 0; k < 8; k++) {
            r[k] = a[k];
        }
        for (i = 8; i < n - (n % 8); i += 8) {
            for (k = 0; k < 8; k++) {
                r[k] += a[i + k];
            }
        }
        res = ((r[0] + r[1]) + (r[2] + r[3])) +
              ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) {
            res += a[i];
        }
        return res;
    }
    else {
        npy_intp n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
    }
}

static int
window_size(PyObject *ny_obj, PyObject *nx_obj, npy_intp *ny, npy_intp *nx)
{
    *ny = PyLong_AsSsize_t(ny_obj);
    *nx = PyLong_AsSsize_t(nx_obj);
    if (PyErr_Occurred()) {
        return -1;
    }
    if (*ny < 1 || *nx < 1) {
        PyErr_SetString(PyExc_ValueError, "ny and nx must be positive");
        return -1;
    }
    return 0;
}

static PyArrayObject *
as_doubles(PyObject *obj, const char *name)
{
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROMANY(
        obj, NPY_DOUBLE, 1, 1, NPY_ARRAY_IN_ARRAY);
    if (arr == NULL) {
        PyErr_Format(PyExc_TypeError, "%s must be a 1-D array of floats",
                     name);
    }
    return arr;
}

static PyObject *
circle_weights(PyObject *self, PyObject *args)
{
    double r;
    PyObject *u_obj, *v_obj, *ny_obj, *nx_obj;
    PyArrayObject *u = NULL, *v = NULL, *out = NULL;
    npy_intp ny, nx, n, k, dims[3];
    if (!PyArg_ParseTuple(args, "dOOOO", &r, &u_obj, &v_obj, &ny_obj,
                          &nx_obj) ||
        window_size(ny_obj, nx_obj, &ny, &nx) < 0) {
        return NULL;
    }
    u = as_doubles(u_obj, "u");
    v = u == NULL ? NULL : as_doubles(v_obj, "v");
    if (v == NULL) {
        goto fail;
    }
    n = PyArray_SIZE(u);
    if (PyArray_SIZE(v) != n) {
        PyErr_SetString(PyExc_ValueError, "u and v must have one length");
        goto fail;
    }
    dims[0] = n;
    dims[1] = ny;
    dims[2] = nx;
    out = (PyArrayObject *)PyArray_SimpleNew(3, dims, NPY_DOUBLE);
    if (out == NULL) {
        goto fail;
    }
    {
        const double *pu = PyArray_DATA(u), *pv = PyArray_DATA(v);
        double *pw = PyArray_DATA(out);
        rects_t rects;
        int failed = rects_alloc_window(&rects, ny, nx) < 0;
        if (!failed) {
            Py_BEGIN_ALLOW_THREADS
            for (k = 0; k < n && !failed; k++) {
                failed = circle_window(r, pu[k], pv[k], ny, nx,
                                       pw + k * ny * nx, &rects) < 0;
            }
            Py_END_ALLOW_THREADS
            rects_free(&rects);
        }
        if (failed) {
            Py_DECREF(out);
            PyErr_NoMemory();
            goto fail;
        }
    }
    Py_DECREF(u);
    Py_DECREF(v);
    return (PyObject *)out;
fail:
    Py_XDECREF(u);
    Py_XDECREF(v);
    return NULL;
}

/* Ask the CPU to start fetching the cache lines of a window's rows (its
 * first and last byte per row): issued one window ahead, the frame's
 * pixels arrive while the kernel computes the overlaps. A hint only (no
 * effect on the numbers); a no-op where the compiler has no prefetch. */
static void
prefetch_window(const char *first, npy_intp ny, npy_intp sy,
                npy_intp row_bytes)
{
#if defined(__GNUC__) || defined(__clang__)
    npy_intp j;
    for (j = 0; j < ny; j++) {
        __builtin_prefetch(first + j * sy);
        __builtin_prefetch(first + j * sy + row_bytes);
    }
#else
    (void)first; (void)ny; (void)sy; (void)row_bytes;
#endif
}

/* One pixel of a float32 or float64 frame as a double. */
static double
pixel(const char *base, int single, npy_intp offset)
{
    return single ? (double)*(const float *)(base + offset)
                  : *(const double *)(base + offset);
}

static PyObject *
circle_sums(PyObject *self, PyObject *args)
{
    double r, r_in, saturation;
    int has_saturation;
    PyObject *data_obj, *x0_obj, *y0_obj, *u_obj, *v_obj, *level_obj;
    PyObject *ny_obj, *nx_obj, *result = NULL;
    PyArrayObject *data, *x0 = NULL, *y0 = NULL, *u = NULL, *v = NULL;
    PyArrayObject *level = NULL, *sums = NULL, *hot = NULL;
    npy_intp ny, nx, n, k, npix, dims[2];
    int single;
    if (!PyArg_ParseTuple(args, "O!ddOOOOOOOpd", &PyArray_Type, &data_obj,
                          &r, &r_in, &x0_obj, &y0_obj, &u_obj, &v_obj, &level_obj,
                          &ny_obj, &nx_obj, &has_saturation, &saturation) ||
        window_size(ny_obj, nx_obj, &ny, &nx) < 0) {
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
    single = PyArray_TYPE(data) == NPY_FLOAT;
    x0 = (PyArrayObject *)PyArray_FROMANY(x0_obj, NPY_INTP, 1, 1,
                                          NPY_ARRAY_IN_ARRAY);
    y0 = x0 == NULL ? NULL : (PyArrayObject *)PyArray_FROMANY(
        y0_obj, NPY_INTP, 1, 1, NPY_ARRAY_IN_ARRAY);
    u = y0 == NULL ? NULL : as_doubles(u_obj, "u");
    v = u == NULL ? NULL : as_doubles(v_obj, "v");
    level = v == NULL ? NULL : as_doubles(level_obj, "level");
    if (level == NULL) {
        goto done;
    }
    n = PyArray_SIZE(u);
    if (PyArray_SIZE(x0) != n || PyArray_SIZE(y0) != n ||
        PyArray_SIZE(v) != n || PyArray_SIZE(level) != n) {
        PyErr_SetString(PyExc_ValueError,
                        "x0, y0, u, v and level must have one length");
        goto done;
    }
    {
        const npy_intp *px = PyArray_DATA(x0), *py = PyArray_DATA(y0);
        for (k = 0; k < n; k++) {
            if (px[k] < 0 || py[k] < 0 || px[k] + nx > PyArray_DIM(data, 1)
                || py[k] + ny > PyArray_DIM(data, 0)) {
                PyErr_SetString(PyExc_ValueError,
                                "every window must lie wholly on the frame");
                goto done;
            }
        }
    }
    dims[0] = 4;
    dims[1] = n;
    sums = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_DOUBLE);
    hot = (PyArrayObject *)PyArray_SimpleNew(1, dims + 1, NPY_BOOL);
    npix = ny * nx;
    if (sums == NULL || hot == NULL) {
        goto done;
    }
    {
        const npy_intp *px = PyArray_DATA(x0), *py = PyArray_DATA(y0);
        const double *pu = PyArray_DATA(u), *pv = PyArray_DATA(v);
        const double *pl = PyArray_DATA(level);
        const char *base = PyArray_DATA(data);
        npy_intp sy = PyArray_STRIDE(data, 0), sx = PyArray_STRIDE(data, 1);
        double *out = PyArray_DATA(sums);
        npy_bool *phot = PyArray_DATA(hot);
        /* weights, w * resid, w * w, (w * w) * resid; an annulus's inner
         * circle */
        double *buf = malloc((size_t)(5 * npix) * sizeof(double));
        rects_t rects;
        int failed = 0;
        if (buf == NULL || rects_alloc_window(&rects, ny, nx) < 0) {
            free(buf);
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        for (k = 0; k < n && !failed; k++) {
            double *w = buf, *wr = buf + npix, *w2 = buf + 2 * npix;
            double *w2r = buf + 3 * npix, *hole = buf + 4 * npix;
            npy_intp j, i, p;
            int is_hot = 0;
            if (k + 1 < n) {
                prefetch_window(base + py[k + 1] * sy + px[k + 1] * sx, ny,
                                sy, (nx - 1) * sx);
            }
            if (circle_window(r, pu[k], pv[k], ny, nx, w, &rects) < 0 ||
                (r_in > 0 && circle_window(r_in, pu[k], pv[k], ny, nx,
                                           hole, &rects) < 0)) {
                failed = 1;
                break;
            }
            if (r_in > 0) {  /* as EllipseShape.weights: outer - inner */
                for (p = 0; p < npix; p++) {
                    w[p] = max2(w[p] - hole[p], 0.0);
                }
            }
            for (j = 0, p = 0; j < ny; j++) {
                npy_intp row = (py[k] + j) * sy + px[k] * sx;
                for (i = 0; i < nx; i++, p++) {
                    double d = pixel(base, single, row + i * sx);
                    double resid = d - pl[k];
                    if (has_saturation && w[p] > 0 && d >= saturation) {
                        is_hot = 1;
                    }
                    w2[p] = w[p] * w[p];
                    wr[p] = resid * w[p];
                    w2r[p] = w2[p] * resid;
                }
            }
            out[k] = pairwise_sum(wr, npix);
            out[n + k] = pairwise_sum(w, npix);
            out[2 * n + k] = pairwise_sum(w2, npix);
            out[3 * n + k] = pairwise_sum(w2r, npix);
            phot[k] = (npy_bool)is_hot;
        }
        Py_END_ALLOW_THREADS
        free(buf);
        rects_free(&rects);
        if (failed) {
            PyErr_NoMemory();
            goto done;
        }
    }
    result = Py_BuildValue("OO", sums, hot);
done:
    Py_XDECREF(x0);
    Py_XDECREF(y0);
    Py_XDECREF(u);
    Py_XDECREF(v);
    Py_XDECREF(level);
    Py_XDECREF(sums);
    Py_XDECREF(hot);
    return result;
}

static PyMethodDef methods[] = {
    {"circle_weights", circle_weights, METH_VARARGS,
     "circle_weights(r, u, v, ny, nx)\n--\n\n"
     "The (n, ny, nx) exact overlaps of circles of radius r with windows "
     "of ny x nx pixels whose first pixel's centre is at (-u, -v) from "
     "each centre."},
    {"circle_sums", circle_sums, METH_VARARGS,
     "circle_sums(data, r, r_in, x0, y0, u, v, level, ny, nx, "
     "has_saturation, saturation)\n--\n\n"
     "Per whole window (first pixel (y0, x0), centre at (u, v) from it) "
     "of a circle of radius r, or of an annulus of radii r_in and r "
     "(r_in > 0): "
     "a (4, n) array of sum(w * (data - level)), sum(w), sum(w**2) and "
     "sum(w**2 * (data - level)) over its pixels, and whether a pixel "
     "with w > 0 is at or above saturation (when has_saturation)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_exact",
    "Exact overlaps of circles with pixels, compiled (internal).", -1,
    methods
};

PyMODINIT_FUNC
PyInit__exact(void)
{
    import_array();
    return PyModule_Create(&module);
}
