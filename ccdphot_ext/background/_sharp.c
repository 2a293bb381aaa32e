/* Licensed under a 3-clause BSD style license - see LICENSE
 *
 * The candidates of `ccdphot_ext.background.outliers`, compiled
 * (internal): the local maxima of rectangles of a frame that stand a given
 * height above the median of their ring of 16 pixels two pixels away,
 * found in one pass down the frame over the rectangles' rows (no
 * temporary of the frame's size), each returned with what
 * `outliers._candidates` judges it by: its 8 neighbours and the median and
 * median absolute deviation of its ring.
 *
 * A pixel is kept where it is finite and usable (not masked), at least 5
 * of its 8 neighbours and 8 of its 16 ring pixels are (on the frame,
 * finite, not masked), it is larger than each usable neighbour, and it
 * exceeds the median of its usable ring pixels (the mean of the two
 * middle ones for an even count, as numpy.nanmedian) by more than
 * ``cut``. The medians are numpy.nanmedian's to the last bit (the middle
 * values of the sorted usable pixels, their sum halved).
 *
 * `box_pass` is the box engine's pass (`photometry.boxengine.fused_route`):
 * the same sweep down the frame also sums the whole boxes of one size (each
 * box's rows copied as the sweep reads them, summed in numpy's pairwise
 * order when its last row is in), so each pixel is read from memory once
 * for the sums and the search.
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

/* One kept pixel: its flat index, its 8 neighbours (NaN where not usable),
 * the median of its usable ring pixels and their median absolute
 * deviation from it. */
typedef struct {
    npy_intp flat;
    double near[8];
    double base, mad;
} candidate_t;

typedef struct {
    candidate_t *data;
    npy_intp n, size;
} list_t;

/* A new element at the end of ``list`` (NULL when out of memory). */
static candidate_t *
append(list_t *list)
{
    if (list->n == list->size) {
        npy_intp size = list->size ? 2 * list->size : 256;
        candidate_t *data = realloc(list->data,
                                    (size_t)size * sizeof(candidate_t));
        if (data == NULL) {
            return NULL;
        }
        list->data = data;
        list->size = size;
    }
    return list->data + list->n++;
}

/* Sort the first n values (insertion: at most 16). */
static void
sort_small(double *a, int n)
{
    int i, j;
    for (i = 1; i < n; i++) {
        double w = a[i];
        for (j = i - 1; j >= 0 && a[j] > w; j--) {
            a[j + 1] = a[j];
        }
        a[j + 1] = w;
    }
}

/* numpy.nanmedian of n >= 1 sorted finite values: the two middle ones
 * (the middle one twice for an odd count) summed and halved. */
static double
median_sorted(const double *a, int n)
{
    int h = n / 2, l = n % 2 ? h : h - 1;
    return (a[l] + a[h]) / 2.0;
}

/* Whether (y, x), of value v (finite), passes (see the file's comment);
 * if so, its neighbours, ring median and deviation are written to c. */
static int
judge(const frame_t *f, npy_intp y, npy_intp x, double v, double cut,
      list_t *out)
{
    double near[8], ring[16], lo = INFINITY, med, base;
    int k, n = 0;
    candidate_t *c;
    for (k = 0; k < 8; k++) {
        double w = value(f, y + NEAR[k][0], x + NEAR[k][1]);
        near[k] = w;
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
    sort_small(ring, n);
    med = n % 2 ? ring[n / 2] : 0.5 * (ring[n / 2 - 1] + ring[n / 2]);
    if (!(v - med > cut)) {
        return 0;
    }
    c = append(out);
    if (c == NULL) {
        return -1;
    }
    c->flat = y * f->nx + x;
    for (k = 0; k < 8; k++) {
        c->near[k] = near[k];
    }
    base = median_sorted(ring, n);
    c->base = base;
    for (k = 0; k < n; k++) {
        ring[k] = fabs(ring[k] - base);
    }
    sort_small(ring, n);
    c->mad = median_sorted(ring, n);
    return 1;
}

/* The side of the tiles a rectangle is scanned in. */
#define TILE 32
/* How many rows ahead of the sweep the rectangles' pixels are asked for,
 * and the share of a row they must cover (with their rings) for the whole
 * row to be asked for (a row read in order costs less than its pieces). */
#define AHEAD 4
#define WHOLE_ROW 4

/* Whether pixel x of a row is masked. */
#define MASKED(f, y, x) \
    ((f)->mask != NULL && (f)->mask[(y) * (f)->my + (x) * (f)->mx])

/* The local level a tile is first cut against: the third smallest of 36
 * pixels sampled on a 6 x 6 grid of rows [y0, y1) x [x0, x1) (about its
 * 8th percentile; NaN and inf not taken), +inf when fewer are finite. The
 * samples are read first, then ranked (their reads overlap). */
#define LOW(TYPE)                                                         \
    static double low_##TYPE(const frame_t *f, npy_intp y0, npy_intp y1,  \
                             npy_intp x0, npy_intp x1)                    \
    {                                                                     \
        double s[3] = {INFINITY, INFINITY, INFINITY}, got[64];            \
        npy_intp y, x, sy = (y1 - y0 + 5) / 6, sx = (x1 - x0 + 5) / 6;   \
        int k, n = 0;                                                     \
        sy = sy < 1 ? 1 : sy;                                             \
        sx = sx < 1 ? 1 : sx;                                             \
        for (y = y0 + sy / 2; y < y1; y += sy) {                          \
            const char *row = f->base + y * f->sy;                        \
            for (x = x0 + sx / 2; x < x1 && n < 64; x += sx) {            \
                got[n++] = *(const TYPE *)(row + x * f->sx);              \
            }                                                             \
        }                                                                 \
        for (k = 0; k < n; k++) {                                         \
            double v = got[k];                                            \
            if (!isfinite(v) || v >= s[2]) {                              \
                continue;                                                 \
            }                                                             \
            if (v < s[0]) {                                               \
                s[2] = s[1];                                              \
                s[1] = s[0];                                              \
                s[0] = v;                                                 \
            } else if (v < s[1]) {                                        \
                s[2] = s[1];                                              \
                s[1] = v;                                                 \
            } else {                                                      \
                s[2] = v;                                                 \
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

/* The pixels x0 <= x < x1 of row y that pass, ``above`` the first cut
 * there (`tile_cut`), appended to ``out``. Without a mask, on contiguous
 * rows and away from the frame's edges, the 8 neighbours (NaN and +inf
 * ones not compared) and the ring (`ring_below`) are read directly before
 * `judge`. */
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
            for (x = a; x < b; x++) {                                     \
                TYPE v;                                                   \
                /* four at a time: a branch the CPU predicts */           \
                if (x + 4 <= b && !((m[x] > hi) | (m[x + 1] > hi) |       \
                                    (m[x + 2] > hi) | (m[x + 3] > hi))) { \
                    x += 3;                                               \
                    continue;                                             \
                }                                                         \
                v = m[x];                                                 \
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
                    judge(f, y, x, (double)v, cut, out) < 0) {            \
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
            if (judge(f, y, x, v, cut, out) < 0) {                        \
                return -1;                                                \
            }                                                             \
        }                                                                 \
        return 0;                                                         \
    }
SPAN(float)
SPAN(double)

/* The local level of the frame's tile (ty, tx) of TILE x TILE pixels
 * (`low`, of the tile grown by 2) + first, +inf when it has too few
 * finite pixels. */
static double
tile_level(const frame_t *f, npy_intp ty, npy_intp tx, double first)
{
    npy_intp y0 = ty * TILE - 2, y1 = (ty + 1) * TILE + 2;
    npy_intp x0 = tx * TILE - 2, x1 = (tx + 1) * TILE + 2;
    y0 = y0 < 0 ? 0 : y0;
    x0 = x0 < 0 ? 0 : x0;
    y1 = y1 > f->ny ? f->ny : y1;
    x1 = x1 > f->nx ? f->nx : x1;
    /* inf stays inf */
    return (f->single ? low_float(f, y0, y1, x0, x1)
                      : low_double(f, y0, y1, x0, x1)) + first;
}

/* The first cut of tile (ty, tx) (`tile_level`), worked out once, on
 * demand (``levels``, NaN until then); where the rectangles are
 * ``dense`` (they cover a quarter of the frame), those of the whole row
 * of tiles at once, in order (their samples read as streams, not one
 * by one from memory). The tiles are the frame's, so a pixel is cut
 * alike whichever rectangles hold it. */
static double
tile_cut(const frame_t *f, double *levels, npy_intp ntx, npy_intp ty,
         npy_intp tx, double first, int dense)
{
    double *row = levels + ty * ntx;
    if (isnan(row[tx])) {
        npy_intp k;
        if (!dense) {
            row[tx] = tile_level(f, ty, tx, first);
        }
        for (k = 0; dense && k < ntx; k++) {
            if (isnan(row[k])) {
                row[k] = tile_level(f, ty, k, first);
            }
        }
    }
    return row[tx];
}

/* numpy's pairwise sum of n contiguous values (its order of additions:
 * blocks of at most 128 summed with 8 accumulators, halves at multiples
 * of 8), so that a box sums to numpy.add.reduce's last bit. */
static double
pairwise(const double *a, npy_intp n)
{
    if (n < 8) {
        double res = 0.;
        npy_intp i;
        for (i = 0; i < n; i++) {
            res += a[i];
        }
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        npy_intp i;
        int j;
        for (j = 0; j < 8; j++) {
            r[j] = a[j];
        }
        for (i = 8; i < n - (n % 8); i += 8) {
            for (j = 0; j < 8; j++) {
                r[j] += a[i + j];
            }
        }
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) {
            res += a[i];
        }
        return res;
    }
    {
        npy_intp n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise(a, n2) + pairwise(a + n2, n - n2);
    }
}

/* The boxes summed during a sweep (`box_pass`): m boxes of h x w pixels
 * at corners (y0[k], x0[k]), sorted by y0, whole on the frame. A box's
 * rows are copied (minus its sky, as float64) into a buffer of its own
 * (``slot``) as the sweep reads them, and summed when its last row is in:
 * the pixels are read once, in the sweep's order. */
typedef struct {
    npy_intp m, h, w, sky_step;
    const npy_intp *y0, *x0;
    const double *sky;
    double *flux, *peak;
    npy_intp next, n_on, n_slots, n_free;
    npy_intp *on, *slot, *free;
    double *pool;
} sums_t;

/* A buffer for box k (-1 when out of memory). */
static int
take_slot(sums_t *s, npy_intp k)
{
    if (!s->n_free) {
        npy_intp n = s->n_slots ? 2 * s->n_slots : 8, j;
        double *pool = realloc(s->pool, (size_t)(n * s->h * s->w)
                                        * sizeof(double));
        npy_intp *free_ = realloc(s->free, (size_t)n * sizeof(npy_intp));
        if (pool != NULL) {
            s->pool = pool;
        }
        if (free_ != NULL) {
            s->free = free_;
        }
        if (pool == NULL || free_ == NULL) {
            return -1;
        }
        for (j = s->n_slots; j < n; j++) {
            s->free[s->n_free++] = j;
        }
        s->n_slots = n;
    }
    s->slot[k] = s->free[--s->n_free];
    return 0;
}

/* Row y of the boxes: those starting there taken on, each box's row
 * copied, the boxes ending there summed; their largest pixels (NaN left
 * out: a box holding one sums to NaN and is measured elsewhere). */
#define SUM_ROW(TYPE)                                                     \
    static int sum_row_##TYPE(const frame_t *f, sums_t *s, npy_intp y)    \
    {                                                                     \
        npy_intp j, k, x, kept = 0, w = s->w;                             \
        while (s->next < s->m && s->y0[s->next] <= y) {                   \
            if (take_slot(s, s->next) < 0) {                              \
                return -1;                                                \
            }                                                             \
            s->peak[s->next] = -INFINITY;                                 \
            s->on[s->n_on++] = s->next++;                                 \
        }                                                                 \
        for (j = 0; j < s->n_on; j++) {                                   \
            npy_intp r;                                                   \
            const char *p;                                                \
            double *buf, pk[4], sky;                                      \
            k = s->on[j];                                                 \
            r = y - s->y0[k];                                             \
            p = f->base + y * f->sy + s->x0[k] * f->sx;                   \
            buf = s->pool + s->slot[k] * s->h * w + r * w;                \
            pk[0] = pk[1] = pk[2] = pk[3] = s->peak[k];                   \
            sky = s->sky[k * s->sky_step];                                \
            if (f->sx == (npy_intp)sizeof(TYPE)) {                        \
                const TYPE *q = (const TYPE *)p;                          \
                for (x = 0; x + 4 <= w; x += 4) {                         \
                    int i;                                                \
                    for (i = 0; i < 4; i++) {                             \
                        double v = (double)q[x + i];                      \
                        pk[i] = v > pk[i] ? v : pk[i];                    \
                        buf[x + i] = v - sky;                             \
                    }                                                     \
                }                                                         \
                for (; x < w; x++) {                                      \
                    double v = (double)q[x];                              \
                    pk[0] = v > pk[0] ? v : pk[0];                        \
                    buf[x] = v - sky;                                     \
                }                                                         \
            } else {                                                      \
                for (x = 0; x < w; x++) {                                 \
                    double v = (double)*(const TYPE *)(p + x * f->sx);    \
                    pk[0] = v > pk[0] ? v : pk[0];                        \
                    buf[x] = v - sky;                                     \
                }                                                         \
            }                                                             \
            pk[0] = pk[1] > pk[0] ? pk[1] : pk[0];                        \
            pk[2] = pk[3] > pk[2] ? pk[3] : pk[2];                        \
            s->peak[k] = pk[2] > pk[0] ? pk[2] : pk[0];                   \
            if (r == s->h - 1) {                                          \
                s->flux[k] = 0. + pairwise(buf - r * w, s->h * w);        \
                s->free[s->n_free++] = s->slot[k];                        \
            } else {                                                      \
                s->on[kept++] = k;                                        \
            }                                                             \
        }                                                                 \
        s->n_on = kept;                                                   \
        return 0;                                                         \
    }
SUM_ROW(float)
SUM_ROW(double)

/* Rectangles (indices into ``b``, rows y0, y1, x0, x1) kept in order of
 * their x0. */
typedef struct {
    npy_intp *idx;
    npy_intp n;
} active_t;

/* Rectangle k into ``a``, in order of x0 (stable). */
static void
insert(active_t *a, const npy_intp *b, npy_intp k)
{
    npy_intp j = a->n++;
    while (j > 0 && b[4 * a->idx[j - 1] + 2] > b[4 * k + 2]) {
        a->idx[j] = a->idx[j - 1];
        j--;
    }
    a->idx[j] = k;
}

/* The rectangles of ``a`` that reach beyond row y (order kept). */
static void
drop_finished(active_t *a, const npy_intp *b, npy_intp y, npy_intp grow)
{
    npy_intp j = 0, k;
    for (k = 0; k < a->n; k++) {
        if (b[4 * a->idx[k] + 1] + grow > y) {
            a->idx[j++] = a->idx[k];
        }
    }
    a->n = j;
}

/* Ask for the pixels (and the two beyond on each side, the rings) of row
 * y of the rectangles of ``ahead`` before the sweep reads them: the whole
 * row read in order where they cover 1 / WHOLE_ROW of it. */
static void
prefetch_row(const frame_t *f, const active_t *ahead, const npy_intp *b,
             npy_intp y)
{
#if defined(__GNUC__) || defined(__clang__)
    npy_intp k, x, step = 64 / f->sx, width = 0;
    const char *row = f->base + y * f->sy;
    if (y < 0 || y >= f->ny || f->sx <= 0 || step < 1) {
        return;
    }
    for (k = 0; k < ahead->n; k++) {
        const npy_intp *r = b + 4 * ahead->idx[k];
        width += r[3] - r[2] + 4;
    }
    if (WHOLE_ROW * width >= f->nx) {
        /* read in order (the processor's own prefetcher streams it:
         * faster than asking for each line of it) */
        volatile char sink;
        char acc[4] = {0, 0, 0, 0};
        for (x = 0; x + 3 * step < f->nx; x += 4 * step) {
            acc[0] |= row[x * f->sx];
            acc[1] |= row[(x + step) * f->sx];
            acc[2] |= row[(x + 2 * step) * f->sx];
            acc[3] |= row[(x + 3 * step) * f->sx];
        }
        sink = acc[0] | acc[1] | acc[2] | acc[3];
        (void)sink;
        return;
    }
    for (k = 0; k < ahead->n; k++) {
        const npy_intp *r = b + 4 * ahead->idx[k];
        npy_intp x0 = r[2] < 2 ? 0 : r[2] - 2;
        npy_intp x1 = r[3] + 2 > f->nx ? f->nx : r[3] + 2;
        if (y < r[0] - 2 || y >= r[1] + 2 || x1 <= x0) {
            continue;
        }
        for (x = x0; x < x1; x += step) {
            __builtin_prefetch(row + x * f->sx);
        }
        __builtin_prefetch(row + (x1 - 1) * f->sx);
    }
#else
    (void)f; (void)ahead; (void)b; (void)y;
#endif
}

/* The pixels of the rectangles (y0, y1, x0, x1 each, on the frame, sorted
 * by y0) that pass, into ``out`` (none looked for where ``out`` is NULL):
 * row by row down the frame, each row's covered stretches once (overlaps
 * merged), cut tile by tile; the rows AHEAD on asked for meanwhile. With
 * ``sums``, its boxes (each inside one of the rectangles) are summed in
 * the same pass, row by row (`sum_row`). */
static int
sweep(const frame_t *f, const npy_intp *b, npy_intp n, double cut,
      double first, list_t *out, sums_t *sums)
{
    npy_intp ntx = (f->nx + TILE - 1) / TILE, nty = (f->ny + TILE - 1) / TILE;
    active_t on = {malloc((size_t)(n + 1) * sizeof(npy_intp)), 0};
    active_t ahead = {malloc((size_t)(n + 1) * sizeof(npy_intp)), 0};
    double *levels = malloc((size_t)(ntx * nty + 1) * sizeof(double));
    npy_intp k, y, next = 0, next_ahead = 0;
    double covered = 0.;
    int status = 0, dense;
    for (k = 0; k < n; k++) {
        covered += (double)(b[4 * k + 1] - b[4 * k])
                   * (double)(b[4 * k + 3] - b[4 * k + 2]);
    }
    dense = WHOLE_ROW * covered >= (double)f->nx * f->ny;
    if (on.idx == NULL || ahead.idx == NULL || levels == NULL) {
        status = -1;
        goto done;
    }
    for (k = 0; k < ntx * nty; k++) {
        levels[k] = NAN;
    }
    y = n ? b[0] : 0;
    while (y < f->ny && (next < n || on.n)) {
        npy_intp x0 = 0, x1 = -1;
        /* the rows AHEAD on, with the rings' two rows on either side */
        while (next_ahead < n && b[4 * next_ahead] - 2 <= y + AHEAD) {
            ahead.idx[ahead.n++] = next_ahead++;
        }
        drop_finished(&ahead, b, y + AHEAD, 2);
        prefetch_row(f, &ahead, b, y + AHEAD);
        while (next < n && b[4 * next] <= y) {
            if (b[4 * next + 1] > y && b[4 * next + 3] > b[4 * next + 2]) {
                insert(&on, b, next);
            }
            next++;
        }
        drop_finished(&on, b, y, 0);
        if (!on.n) {
            if (next >= n) {
                break;
            }
            y = b[4 * next];
            continue;
        }
        if (sums != NULL &&
            (f->single ? sum_row_float(f, sums, y)
                       : sum_row_double(f, sums, y)) < 0) {
            status = -1;
            goto done;
        }
        /* the covered stretches in order, overlapping ones merged */
        for (k = 0; out != NULL && k <= on.n; k++) {
            const npy_intp *r = k < on.n ? b + 4 * on.idx[k] : NULL;
            if (r != NULL && r[2] <= x1) {
                x1 = r[3] > x1 ? r[3] : x1;
                continue;
            }
            while (x0 < x1) {  /* the stretch [x0, x1), tile by tile */
                npy_intp tx = x0 / TILE, stop = (tx + 1) * TILE;
                double above = tile_cut(f, levels, ntx, y / TILE, tx,
                                        first, dense);
                stop = stop < x1 ? stop : x1;
                if (above != INFINITY &&
                    (f->single ? span_float(f, y, x0, stop, above, cut, out)
                               : span_double(f, y, x0, stop, above, cut,
                                             out)) < 0) {
                    status = -1;
                    goto done;
                }
                x0 = stop;
            }
            if (r != NULL) {
                x0 = r[2];
                x1 = r[3];
            }
        }
        y++;
    }
done:
    free(on.idx);
    free(ahead.idx);
    free(levels);
    return status;
}


/* The frame ``f`` of ``data`` (no mask); -1 with TypeError set when it is
 * not an aligned 2-D float32 or float64 array in native byte order. */
static int
set_frame(PyArrayObject *data, frame_t *f)
{
    if (PyArray_NDIM(data) != 2 || !PyArray_ISALIGNED(data) ||
        !PyArray_ISNOTSWAPPED(data) ||
        (PyArray_TYPE(data) != NPY_DOUBLE &&
         PyArray_TYPE(data) != NPY_FLOAT)) {
        PyErr_SetString(PyExc_TypeError,
                        "data must be an aligned 2-D float32 or float64 "
                        "array in native byte order");
        return -1;
    }
    f->base = PyArray_DATA(data);
    f->sy = PyArray_STRIDE(data, 0);
    f->sx = PyArray_STRIDE(data, 1);
    f->ny = PyArray_DIM(data, 0);
    f->nx = PyArray_DIM(data, 1);
    f->single = PyArray_TYPE(data) == NPY_FLOAT;
    f->mask = NULL;
    f->my = f->mx = 0;
    return 0;
}

/* The kept pixels as the tuple (flat, near, base, mad); NULL on error. */
static PyObject *
pack(const list_t *out)
{
    PyArrayObject *flat, *near, *base, *mad;
    PyObject *result = NULL;
    npy_intp k, dims[2] = {out->n, 8};
    flat = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INTP);
    near = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_DOUBLE);
    base = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_DOUBLE);
    mad = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_DOUBLE);
    if (flat != NULL && near != NULL && base != NULL && mad != NULL) {
        npy_intp *r = PyArray_DATA(flat);
        double *nr = PyArray_DATA(near), *bs = PyArray_DATA(base);
        double *md = PyArray_DATA(mad);
        int j;
        for (k = 0; k < out->n; k++) {
            r[k] = out->data[k].flat;
            for (j = 0; j < 8; j++) {
                nr[8 * k + j] = out->data[k].near[j];
            }
            bs[k] = out->data[k].base;
            md[k] = out->data[k].mad;
        }
        result = PyTuple_Pack(4, flat, near, base, mad);
    }
    Py_XDECREF(flat);
    Py_XDECREF(near);
    Py_XDECREF(base);
    Py_XDECREF(mad);
    return result;
}

static PyObject *
candidates(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *mask_obj, *boxes_obj, *result = NULL;
    PyArrayObject *data, *mask = NULL, *boxes = NULL;
    double cut, first;
    frame_t f;
    list_t out = {NULL, 0, 0};
    npy_intp k, n;
    int failed = 0;
    if (!PyArg_ParseTuple(args, "O!OOdd", &PyArray_Type, &data_obj,
                          &mask_obj, &boxes_obj, &cut, &first)) {
        return NULL;
    }
    data = (PyArrayObject *)data_obj;
    if (set_frame(data, &f) < 0) {
        return NULL;
    }
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
        failed = sweep(&f, b, n, cut, first, &out, NULL) < 0;
        Py_END_ALLOW_THREADS
    }
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = pack(&out);
done:
    free(out.data);
    Py_XDECREF(mask);
    Py_XDECREF(boxes);
    return result;
}


static PyObject *
box_pass(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *y0_obj, *x0_obj, *sky_obj, *scan_obj;
    PyObject *result = NULL, *found = NULL;
    PyArrayObject *y0 = NULL, *x0 = NULL, *sky = NULL, *scan = NULL;
    PyArrayObject *rects = NULL;
    PyArrayObject *flux = NULL, *peak = NULL;
    npy_intp h, w, m, k, sky_step;
    double cut, first;
    frame_t f;
    list_t out = {NULL, 0, 0};
    int failed;
    if (!PyArg_ParseTuple(args, "O!OOnnOOdd", &PyArray_Type, &data_obj,
                          &y0_obj, &x0_obj, &h, &w, &sky_obj, &scan_obj,
                          &cut, &first)) {
        return NULL;
    }
    if (set_frame((PyArrayObject *)data_obj, &f) < 0) {
        return NULL;
    }
    y0 = (PyArrayObject *)PyArray_FROMANY(y0_obj, NPY_INTP, 1, 1,
                                          NPY_ARRAY_IN_ARRAY);
    x0 = (PyArrayObject *)PyArray_FROMANY(x0_obj, NPY_INTP, 1, 1,
                                          NPY_ARRAY_IN_ARRAY);
    sky = (PyArrayObject *)PyArray_FROMANY(sky_obj, NPY_DOUBLE, 0, 1,
                                           NPY_ARRAY_IN_ARRAY);
    if (y0 == NULL || x0 == NULL || sky == NULL) {
        goto done;
    }
    m = PyArray_DIM(y0, 0);
    sky_step = PyArray_NDIM(sky) == 1 ? 1 : 0;
    if (PyArray_DIM(x0, 0) != m || (sky_step && PyArray_DIM(sky, 0) != m)
        || h < 1 || w < 1) {
        PyErr_SetString(PyExc_ValueError,
                        "y0, x0 (and sky) must have one value per box");
        goto done;
    }
    {
        const npy_intp *ys = PyArray_DATA(y0), *xs = PyArray_DATA(x0);
        for (k = 0; k < m; k++) {
            if (ys[k] < 0 || xs[k] < 0 || ys[k] + h > f.ny ||
                xs[k] + w > f.nx || (k && ys[k] < ys[k - 1])) {
                PyErr_SetString(PyExc_ValueError,
                                "boxes must lie whole on the frame, sorted "
                                "by y0");
                goto done;
            }
        }
    }
    if (scan_obj != Py_None) {
        const npy_intp *b;
        scan = (PyArrayObject *)PyArray_FROMANY(scan_obj, NPY_INTP, 2, 2,
                                                NPY_ARRAY_IN_ARRAY);
        if (scan == NULL) {
            goto done;
        }
        if (PyArray_DIM(scan, 0) != m || PyArray_DIM(scan, 1) != 4) {
            PyErr_SetString(PyExc_ValueError, "scan must be (m, 4)");
            goto done;
        }
        const npy_intp *ys = PyArray_DATA(y0), *xs = PyArray_DATA(x0);
        b = PyArray_DATA(scan);
        for (k = 0; k < m; k++) {
            if (b[4 * k] < 0 || b[4 * k + 2] < 0 || b[4 * k + 1] > f.ny ||
                b[4 * k + 3] > f.nx || b[4 * k] > ys[k] ||
                b[4 * k + 1] < ys[k] + h || b[4 * k + 2] > xs[k] ||
                b[4 * k + 3] < xs[k] + w || (k && b[4 * k] < b[4 * k - 4])) {
                PyErr_SetString(PyExc_ValueError,
                                "scan rectangles must lie on the frame, "
                                "hold their box and be sorted by y0");
                goto done;
            }
        }
        rects = scan;
        Py_INCREF(rects);
    } else {
        npy_intp dims[2] = {m, 4}, *b;
        const npy_intp *ys = PyArray_DATA(y0), *xs = PyArray_DATA(x0);
        rects = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INTP);
        if (rects == NULL) {
            goto done;
        }
        b = PyArray_DATA(rects);
        for (k = 0; k < m; k++) {
            b[4 * k] = ys[k];
            b[4 * k + 1] = ys[k] + h;
            b[4 * k + 2] = xs[k];
            b[4 * k + 3] = xs[k] + w;
        }
    }
    flux = (PyArrayObject *)PyArray_SimpleNew(1, &m, NPY_DOUBLE);
    peak = (PyArrayObject *)PyArray_SimpleNew(1, &m, NPY_DOUBLE);
    if (flux == NULL || peak == NULL) {
        goto done;
    }
    {
        sums_t sums = {m, h, w, sky_step, PyArray_DATA(y0), PyArray_DATA(x0),
                       PyArray_DATA(sky), PyArray_DATA(flux),
                       PyArray_DATA(peak), 0, 0, 0, 0, NULL, NULL, NULL,
                       NULL};
        sums.on = malloc((size_t)(m + 1) * sizeof(npy_intp));
        sums.slot = malloc((size_t)(m + 1) * sizeof(npy_intp));
        Py_BEGIN_ALLOW_THREADS
        failed = sums.on == NULL || sums.slot == NULL ||
            sweep(&f, PyArray_DATA(rects), m, cut, first,
                  scan == NULL ? NULL : &out, &sums) < 0;
        Py_END_ALLOW_THREADS
        free(sums.on);
        free(sums.slot);
        free(sums.free);
        free(sums.pool);
    }
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    if (scan != NULL) {
        found = pack(&out);
        if (found == NULL) {
            goto done;
        }
    } else {
        found = Py_None;
        Py_INCREF(found);
    }
    result = PyTuple_Pack(3, flux, peak, found);
done:
    free(out.data);
    Py_XDECREF(found);
    Py_XDECREF(y0);
    Py_XDECREF(x0);
    Py_XDECREF(sky);
    Py_XDECREF(scan);
    Py_XDECREF(rects);
    Py_XDECREF(flux);
    Py_XDECREF(peak);
    return result;
}

static PyMethodDef methods[] = {
    {"candidates", candidates, METH_VARARGS,
     "candidates(data, mask, boxes, cut, first)\n--\n\n"
     "The pixels of the rectangles ``boxes`` (rows y0, y1, x0, x1, stops "
     "exclusive, on the frame, sorted by y0) that are usable local maxima "
     "more than ``cut`` above the median of their usable ring of 16 "
     "pixels, among those more than ``first`` above their tile's "
     "local level: their flat indices (increasing), their 8 neighbours "
     "(n, 8; NaN where not usable), and the median of their usable ring "
     "pixels and the median of those pixels' absolute deviations from it "
     "(numpy.nanmedian's, to the last bit)."},
    {"box_pass", box_pass, METH_VARARGS,
     "box_pass(data, y0, x0, height, width, sky, scan, cut, first)\n--\n\n"
     "One pass over whole boxes (corners y0, x0, all height x width, on "
     "the frame): each box's sum of data - sky (sky one value or one per "
     "box) in numpy.add.reduce's order of additions, its largest pixel "
     "(NaN where one is NaN), and with ``scan`` ((m, 4) rectangles y0, y1, "
     "x0, x1 on the frame, or None) the candidates of each box's "
     "rectangle, read while the box is in the cache, as `candidates` "
     "returns them (a pixel of overlapping rectangles more than once); "
     "None without ``scan``."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sharp",
    "The candidates of the sharp-pixel search, compiled (internal).", -1,
    methods
};

PyMODINIT_FUNC
PyInit__sharp(void)
{
    import_array();
    return PyModule_Create(&module);
}
