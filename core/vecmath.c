/* vecmath.c -- the numerical kernels several loss families share: the
 * reductions, dot products, Euclidean norms and distances with their
 * gradients, arg-max, sorting, the max-shifted log-sum-exp and the hinge. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lossInt.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LOSS_LOG_AVX2 1
#endif

/* Outside [SQ_TINY, SQ_HUGE] a sum of squares may have lost precision to
 * underflow or be about to overflow, so a Euclidean length is recomputed
 * with the components scaled by the largest of them: coordinates differing
 * by 1e-300 or 1e300 still have an accurate distance and gradient.  Ordinary
 * inputs take the plain path, which is exact whenever the squares and their
 * sum are (integer coordinates), so exact ties stay ties. */
#define SQ_TINY 0x1p-960
#define SQ_HUGE 0x1p1000

double loss_reduce(double sum, double count, loss_reduction reduction)
{
    if (reduction == LOSS_REDUCE_SUM)
        return sum;
    return count > 0.0 ? sum / count : 0.0;
}

double loss_grad_scale(double count, loss_reduction reduction)
{
    if (reduction == LOSS_REDUCE_SUM)
        return 1.0;
    return count > 0.0 ? 1.0 / count : 0.0;
}

void loss_vec_zero(double *x, size_t n)
{
    size_t i;

    for (i = 0; x && i < n; i++)
        x[i] = 0.0;
}

size_t loss_vec_argmax(const double *x, size_t k)
{
    size_t j, best = 0;

    for (j = 1; j < k; j++)
        if (x[j] > x[best])
            best = j;
    return best;
}

int loss_cmp_double(const void *x, const void *y)
{
    double u = *(const double *)x, v = *(const double *)y;

    return (u > v) - (u < v);
}

/* The bits of x mapped so that unsigned order is numeric order: negative
 * values flipped whole, the sign bit set on the others. */
static uint64_t sort_key(double x)
{
    uint64_t b;

    memcpy(&b, &x, sizeof b);
    return b >> 63 ? ~b : b | (uint64_t)1 << 63;
}

/* Below this many values, insertion sort beats the passes' set-up. */
#define SORT_SMALL 48

static void insertion_sort(double *x, size_t n)
{
    size_t i, j;
    double t;

    for (i = 1; i < n; i++) {
        t = x[i];
        for (j = i; j > 0 && x[j - 1] > t; j--)
            x[j] = x[j - 1];
        x[j] = t;
    }
}

/* Method: a least-significant-digit radix sort of sort_key, eight bits a
 * pass, stable; the counts of all eight digits come from one read, and a
 * pass where every key has the same digit is skipped (distances of one
 * magnitude share their top bytes). */
void loss_sort_doubles(double *x, size_t n, double *tmp)
{
    size_t count[8][256], p, i, at, c;
    double *src = x, *dst = tmp, *t;
    uint64_t k;

    if (n <= SORT_SMALL) {
        insertion_sort(x, n);
        return;
    }
    memset(count, 0, sizeof count);
    for (i = 0; i < n; i++)
        for (k = sort_key(x[i]), p = 0; p < 8; p++)
            count[p][(k >> (8 * p)) & 0xff]++;
    for (p = 0; p < 8; p++) {
        if (count[p][(sort_key(src[0]) >> (8 * p)) & 0xff] == n)
            continue;
        for (at = 0, i = 0; i < 256; i++)
            c = count[p][i], count[p][i] = at, at += c;
        for (i = 0; i < n; i++)
            dst[count[p][(sort_key(src[i]) >> (8 * p)) & 0xff]++] = src[i];
        t = src, src = dst, dst = t;
    }
    if (src != x)
        memcpy(x, src, n * sizeof *x);
}

/* Sums of products are kept in LANES running sums: term j goes to sum
 * j % LANES, and the sums are added pairwise at the end.  With one
 * running sum each addition waits for the one before; separate sums
 * overlap, two to a vector register.  The order is fixed, so every
 * machine gives the same bits.
 *
 * Accuracy: each term meets at most ceil(d / LANES) + 2 roundings (its
 * product, its lane, the pairwise sums), so the error is within that many
 * units u = eps / 2 of the sum of |term|; one running sum allows d. */
#define LANES 4

/* Adds the lanes of s pairwise. */
static double lanes_total(const double *s)
{
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* u . v for d >= LANES. */
static double dot_lanes(const double *u, const double *v, size_t d)
{
    double s[LANES] = {0.0};
    size_t j, l;

    for (j = 0; j + LANES <= d; j += LANES)
        for (l = 0; l < LANES; l++)
            s[l] += u[j + l] * v[j + l];
    for (l = 0; j < d; j++, l++)
        s[l] += u[j] * v[j];
    return lanes_total(s);
}

/* ||u - v||^2 for d >= LANES; the difference adds two roundings to each
 * term's bound. */
static double sqdist_lanes(const double *u, const double *v, size_t d)
{
    double s[LANES] = {0.0}, t;
    size_t j, l;

    for (j = 0; j + LANES <= d; j += LANES)
        for (l = 0; l < LANES; l++) {
            t = u[j + l] - v[j + l];
            s[l] += t * t;
        }
    for (l = 0; j < d; j++, l++) {
        t = u[j] - v[j];
        s[l] += t * t;
    }
    return lanes_total(s);
}

/* Below LANES terms, one running sum from 0 adds in the lanes' order; it
 * runs as a separate loop because the short vectors of the sample
 * estimators (D = 1 to 3) are slowed by setting up lanes they never use. */
double loss_vec_dot(const double *u, const double *v, size_t d)
{
    double r = 0.0;
    size_t j;

    if (d >= LANES)
        return dot_lanes(u, v, d);
    for (j = 0; j < d; j++)
        r += u[j] * v[j];
    return r;
}

/* ||u - v||^2 in one running sum from 0, for d < LANES: it adds in the
 * lanes' order (see loss_vec_dot). */
static inline double sqdist_short(const double *u, const double *v, size_t d)
{
    double r = 0.0, t;
    size_t j;

    for (j = 0; j < d; j++) {
        t = u[j] - v[j];
        r += t * t;
    }
    return r;
}

double loss_vec_sqdist(const double *u, const double *v, size_t d)
{
    return d >= LANES ? sqdist_lanes(u, v, d) : sqdist_short(u, v, d);
}

/* sqdist_short over n rows, d a constant where it is inlined, so that the
 * compiler unrolls it. */
static inline void sqdist_rows_short(const double *x, const double *y, size_t n,
                                     size_t d, double *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        out[i] = sqdist_short(x, y + i * d, d);
}

void loss_vec_sqdist_rows(const double *x, const double *y, size_t n, size_t d,
                          double *out)
{
    size_t i;

    switch (d) {
    case 1:
        sqdist_rows_short(x, y, n, 1, out);
        return;
    case 2:
        sqdist_rows_short(x, y, n, 2, out);
        return;
    case 3:
        sqdist_rows_short(x, y, n, 3, out);
        return;
    default:
        for (i = 0; i < n; i++)
            out[i] = sqdist_lanes(x, y + i * d, d);
    }
}

void loss_vec_axpy(double *restrict y, double a, const double *restrict x,
                   size_t d)
{
    size_t j, l;

    for (j = 0; j + LANES <= d; j += LANES)
        for (l = 0; l < LANES; l++)
            y[j + l] += a * x[j + l];
    for (; j < d; j++)
        y[j] += a * x[j];
}

/* Component j of u - v, or of u when v is NULL. */
static double diff(const double *u, const double *v, size_t j)
{
    return v ? u[j] - v[j] : u[j];
}

/* ||u - v||^2 (||u||^2 when v is NULL). */
static double sum_squares(const double *u, const double *v, size_t d)
{
    return v ? loss_vec_sqdist(u, v, d) : loss_vec_dot(u, u, d);
}

/* ||u - v|| (||u|| when v is NULL), rescaled outside [SQ_TINY, SQ_HUGE]. */
static double length(const double *u, const double *v, size_t d)
{
    double s = sum_squares(u, v, d), m = 0.0, r = 0.0, t;
    size_t j;

    if (s >= SQ_TINY && s <= SQ_HUGE)
        return sqrt(s);
    for (j = 0; j < d; j++)
        m = fmax(m, fabs(diff(u, v, j)));
    if (m == 0.0 || isinf(m))
        return m;
    for (j = 0; j < d; j++) {
        t = diff(u, v, j) / m;
        r += t * t;
    }
    return m * sqrt(r);
}

double loss_vec_norm(const double *u, size_t d)
{
    return length(u, NULL, d);
}

double loss_vec_dist(const double *u, const double *v, size_t d)
{
    return length(u, v, d);
}

double loss_vec_distance(const double *u, const double *v, size_t d,
                         loss_distance kind)
{
    return kind == LOSS_DIST_EUCLIDEAN ? length(u, v, d) : sum_squares(u, v, d);
}

/* The terms t of the gradient at [j, j + n), n <= LANES, added to gu and
 * taken from gv. */
static void dist_grad_apply(double *gu, double *gv, size_t j, const double *t,
                            size_t n)
{
    size_t l;

    if (gu)
        for (l = 0; l < n; l++)
            gu[j + l] += t[l];
    if (gv)
        for (l = 0; l < n; l++)
            gv[j + l] -= t[l];
}

/* The Euclidean gradient divides each difference by D before weighting it,
 * so a tiny D cannot overflow.  LANES terms at a time, each block computed
 * in a loop of its own kind, so that the arithmetic and the updates fill
 * vector registers; every term is the one a plain loop computes. */
void loss_vec_dist_grad(double *gu, double *gv, const double *u,
                        const double *v, size_t d, double dist, double w,
                        loss_distance kind)
{
    double t[LANES], w2 = 2.0 * w;
    size_t j, l;
    int euclid = kind == LOSS_DIST_EUCLIDEAN;

    if (euclid && dist == 0.0)
        return;
    for (j = 0; j + LANES <= d; j += LANES) {
        if (euclid)
            for (l = 0; l < LANES; l++)
                t[l] = w * ((u[j + l] - v[j + l]) / dist);
        else
            for (l = 0; l < LANES; l++)
                t[l] = w2 * (u[j + l] - v[j + l]);
        dist_grad_apply(gu, gv, j, t, LANES);
    }
    for (l = 0; j + l < d; l++)
        t[l] = euclid ? w * ((u[j + l] - v[j + l]) / dist)
                      : w2 * (u[j + l] - v[j + l]);
    dist_grad_apply(gu, gv, j, t, l);
}

double loss_lse_shifted(const double *z, size_t k, double *m)
{
    size_t j, top = loss_vec_argmax(z, k);
    double rest = 0.0;

    for (j = 0; j < k; j++)
        if (j != top)
            rest += loss_exp(z[j] - z[top]);
    *m = z[top];
    return log1p(rest);
}

double loss_lse_exps(const double *z, size_t k, size_t *top, double *e,
                     double *sum)
{
    size_t j, t = loss_vec_argmax(z, k);
    double rest = 0.0, m = z[t];

    for (j = 0; j < k; j++)
        e[j] = z[j] - m;
    loss_exp_array(e, e, k);
    /* exp(0) = 1 at the arg-max, which the sum leaves out: no branch. */
    for (j = 0; j < k; j++)
        rest += j == t ? 0.0 : e[j];
    *top = t;
    *sum = 1.0 + rest;
    return log1p(rest);
}

double loss_lse(const double *z, size_t k)
{
    double m, shifted = loss_lse_shifted(z, k, &m);

    return m + shifted;
}

double loss_hinge_term(double z, int p, double *dz)
{
    if (z <= 0.0) { /* a NaN, from distances past DBL_MAX, stays NaN */
        *dz = 0.0;
        return 0.0;
    }
    *dz = p == 2 ? 2.0 * z : 1.0;
    return p == 2 ? z * z : z;
}

/* ---- e^x ------------------------------------------------------------------
 * loss_exp_tab (lossInt.h, loss_exp): for k in [0, 128), with H the double
 * nearest 2^(k/128) and T = 2^(k/128) / H - 1 its relative tail, entry 2k
 * is the bits of T and entry 2k + 1 the bits of H minus k << 45, so that
 * adding the shifted exponent of 2^(i/128) gives those of H directly.
 * Generated with exact decimal arithmetic:
 *
 *   from decimal import Decimal, getcontext
 *   import struct
 *   getcontext().prec = 60
 *   def bits(d): return struct.unpack('<Q', struct.pack('<d', d))[0]
 *   for k in range(128):
 *       v = Decimal(2) ** (Decimal(k) / 128)
 *       h = float(v); t = float(v / Decimal(h) - 1)
 *       hk = (bits(h) - (k << 45)) % 2 ** 64
 *       print("0x%016xu, 0x%016xu," % (bits(t), hk))
 */
/* clang-format off */
const uint64_t loss_exp_tab[2 * LOSS_EXP_N] = {
    0x0000000000000000u, 0x3ff0000000000000u,
    0x3c9b3b4f1a88bf6eu, 0x3feff63da9fb3335u,
    0xbc7160139cd8dc5du, 0x3fefec9a3e778061u,
    0xbc905e7a108766d1u, 0x3fefe315e86e7f85u,
    0x3c8cd2523567f613u, 0x3fefd9b0d3158574u,
    0xbc8bce8023f98efau, 0x3fefd06b29ddf6deu,
    0x3c60f74e61e6c861u, 0x3fefc74518759bc8u,
    0x3c90a3e45b33d399u, 0x3fefbe3ecac6f383u,
    0x3c979aa65d837b6du, 0x3fefb5586cf9890fu,
    0x3c8eb51a92fdeffcu, 0x3fefac922b7247f7u,
    0x3c3ebe3d702f9cd1u, 0x3fefa3ec32d3d1a2u,
    0xbc6a033489906e0bu, 0x3fef9b66affed31bu,
    0xbc9556522a2fbd0eu, 0x3fef9301d0125b51u,
    0xbc5080ef8c4eea55u, 0x3fef8abdc06c31ccu,
    0xbc91c923b9d5f416u, 0x3fef829aaea92de0u,
    0x3c80d3e3e95c55afu, 0x3fef7a98c8a58e51u,
    0xbc801b15eaa59348u, 0x3fef72b83c7d517bu,
    0xbc8f1ff055de323du, 0x3fef6af9388c8deau,
    0x3c8b898c3f1353bfu, 0x3fef635beb6fcb75u,
    0xbc96d99c7611eb26u, 0x3fef5be084045cd4u,
    0x3c9aecf73e3a2f60u, 0x3fef54873168b9aau,
    0xbc8fe782cb86389du, 0x3fef4d5022fcd91du,
    0x3c8a6f4144a6c38du, 0x3fef463b88628cd6u,
    0x3c807a05b0e4047du, 0x3fef3f49917ddc96u,
    0x3c968efde3a8a894u, 0x3fef387a6e756238u,
    0x3c875e18f274487du, 0x3fef31ce4fb2a63fu,
    0x3c80472b981fe7f2u, 0x3fef2b4565e27cddu,
    0xbc96b87b3f71085eu, 0x3fef24dfe1f56381u,
    0x3c82f7e16d09ab31u, 0x3fef1e9df51fdee1u,
    0xbc3d219b1a6fbffau, 0x3fef187fd0dad990u,
    0x3c8b3782720c0ab4u, 0x3fef1285a6e4030bu,
    0x3c6e149289cecb8fu, 0x3fef0cafa93e2f56u,
    0x3c834d754db0abb6u, 0x3fef06fe0a31b715u,
    0x3c864201e2ac744cu, 0x3fef0170fc4cd831u,
    0x3c8fdd395dd3f84au, 0x3feefc08b26416ffu,
    0xbc86a3803b8e5b04u, 0x3feef6c55f929ff1u,
    0xbc924aedcc4b5068u, 0x3feef1a7373aa9cbu,
    0xbc9907f81b512d8eu, 0x3feeecae6d05d866u,
    0xbc71d1e83e9436d2u, 0x3feee7db34e59ff7u,
    0xbc991919b3ce1b15u, 0x3feee32dc313a8e5u,
    0x3c859f48a72a4c6du, 0x3feedea64c123422u,
    0xbc9312607a28698au, 0x3feeda4504ac801cu,
    0xbc58a78f4817895bu, 0x3feed60a21f72e2au,
    0xbc7c2c9b67499a1bu, 0x3feed1f5d950a897u,
    0x3c4363ed60c2ac11u, 0x3feece086061892du,
    0x3c9666093b0664efu, 0x3feeca41ed1d0057u,
    0x3c6ecce1daa10379u, 0x3feec6a2b5c13cd0u,
    0x3c93ff8e3f0f1230u, 0x3feec32af0d7d3deu,
    0x3c7690cebb7aafb0u, 0x3feebfdad5362a27u,
    0x3c931dbdeb54e077u, 0x3feebcb299fddd0du,
    0xbc8f94340071a38eu, 0x3feeb9b2769d2ca7u,
    0xbc87deccdc93a349u, 0x3feeb6daa2cf6642u,
    0xbc78dec6bd0f385fu, 0x3feeb42b569d4f82u,
    0xbc861246ec7b5cf6u, 0x3feeb1a4ca5d920fu,
    0x3c93350518fdd78eu, 0x3feeaf4736b527dau,
    0x3c7b98b72f8a9b05u, 0x3feead12d497c7fdu,
    0x3c9063e1e21c5409u, 0x3feeab07dd485429u,
    0x3c34c7855019c6eau, 0x3feea9268a5946b7u,
    0x3c9432e62b64c035u, 0x3feea76f15ad2148u,
    0xbc8ce44a6199769fu, 0x3feea5e1b976dc09u,
    0xbc8c33c53bef4da8u, 0x3feea47eb03a5585u,
    0xbc845378892be9aeu, 0x3feea34634ccc320u,
    0xbc93cedd78565858u, 0x3feea23882552225u,
    0x3c5710aa807e1964u, 0x3feea155d44ca973u,
    0xbc93b3efbf5e2228u, 0x3feea09e667f3bcdu,
    0xbc6a12ad8734b982u, 0x3feea012750bdabfu,
    0xbc6367efb86da9eeu, 0x3fee9fb23c651a2fu,
    0xbc80dc3d54e08851u, 0x3fee9f7df9519484u,
    0xbc781f647e5a3ecfu, 0x3fee9f75e8ec5f74u,
    0xbc86ee4ac08b7db0u, 0x3fee9f9a48a58174u,
    0xbc8619321e55e68au, 0x3fee9feb564267c9u,
    0x3c909ccb5e09d4d3u, 0x3feea0694fde5d3fu,
    0xbc7b32dcb94da51du, 0x3feea11473eb0187u,
    0x3c94ecfd5467c06bu, 0x3feea1ed0130c132u,
    0x3c65ebe1abd66c55u, 0x3feea2f336cf4e62u,
    0xbc88a1c52fb3cf42u, 0x3feea427543e1a12u,
    0xbc9369b6f13b3734u, 0x3feea589994cce13u,
    0xbc805e843a19ff1eu, 0x3feea71a4623c7adu,
    0xbc94d450d872576eu, 0x3feea8d99b4492edu,
    0x3c90ad675b0e8a00u, 0x3feeaac7d98a6699u,
    0x3c8db72fc1f0eab4u, 0x3feeace5422aa0dbu,
    0xbc65b6609cc5e7ffu, 0x3feeaf3216b5448cu,
    0x3c7bf68359f35f44u, 0x3feeb1ae99157736u,
    0xbc93091fa71e3d83u, 0x3feeb45b0b91ffc6u,
    0xbc5da9b88b6c1e29u, 0x3feeb737b0cdc5e5u,
    0xbc6c23f97c90b959u, 0x3feeba44cbc8520fu,
    0xbc92434322f4f9aau, 0x3feebd829fde4e50u,
    0xbc85ca6cd7668e4bu, 0x3feec0f170ca07bau,
    0x3c71affc2b91ce27u, 0x3feec49182a3f090u,
    0x3c6dd235e10a73bbu, 0x3feec86319e32323u,
    0xbc87c50422622263u, 0x3feecc667b5de565u,
    0x3c8b1c86e3e231d5u, 0x3feed09bec4a2d33u,
    0xbc91bbd1d3bcbb15u, 0x3feed503b23e255du,
    0x3c90cc319cee31d2u, 0x3feed99e1330b358u,
    0x3c8469846e735ab3u, 0x3feede6b5579fdbfu,
    0xbc82dfcd978e9db4u, 0x3feee36bbfd3f37au,
    0x3c8c1a7792cb3387u, 0x3feee89f995ad3adu,
    0xbc907b8f4ad1d9fau, 0x3feeee07298db666u,
    0xbc55c3d956dcaebau, 0x3feef3a2b84f15fbu,
    0xbc90a40e3da6f640u, 0x3feef9728de5593au,
    0xbc68d6f438ad9334u, 0x3feeff76f2fb5e47u,
    0xbc91eee26b588a35u, 0x3fef05b030a1064au,
    0x3c74ffd70a5fddcdu, 0x3fef0c1e904bc1d2u,
    0xbc91bdfbfa9298acu, 0x3fef12c25bd71e09u,
    0x3c736eae30af0cb3u, 0x3fef199bdd85529cu,
    0x3c8ee3325c9ffd94u, 0x3fef20ab5fffd07au,
    0x3c84e08fd10959acu, 0x3fef27f12e57d14bu,
    0x3c63cdaf384e1a67u, 0x3fef2f6d9406e7b5u,
    0x3c676b2c6c921968u, 0x3fef3720dcef9069u,
    0xbc808a1883ccb5d2u, 0x3fef3f0b555dc3fau,
    0xbc8fad5d3ffffa6fu, 0x3fef472d4a07897cu,
    0xbc900dae3875a949u, 0x3fef4f87080d89f2u,
    0x3c74a385a63d07a7u, 0x3fef5818dcfba487u,
    0xbc82919e2040220fu, 0x3fef60e316c98398u,
    0x3c8e5a50d5c192acu, 0x3fef69e603db3285u,
    0x3c843a59ac016b4bu, 0x3fef7321f301b460u,
    0xbc82d52107b43e1fu, 0x3fef7c97337b9b5fu,
    0xbc892ab93b470dc9u, 0x3fef864614f5a129u,
    0x3c74b604603a88d3u, 0x3fef902ee78b3ff6u,
    0x3c83c5ec519d7271u, 0x3fef9a51fbc74c83u,
    0xbc8ff7128fd391f0u, 0x3fefa4afa2a490dau,
    0xbc8dae98e223747du, 0x3fefaf482d8e67f1u,
    0x3c8ec3bc41aa2008u, 0x3fefba1bee615a27u,
    0x3c842b94c3a9eb32u, 0x3fefc52b376bba97u,
    0x3c8a64a931d185eeu, 0x3fefd0765b6e4540u,
    0xbc8e37bae43be3edu, 0x3fefdbfdad9cbe14u,
    0x3c77893b4d91cd9du, 0x3fefe7c1819e90d8u,
    0x3c5305c14160cc89u, 0x3feff3c22b8f71f1u,
};
/* clang-format on */

/* ---- log x over an array ----------------------------------------------------
 * loss_log_array (lossInt.h): libm's log, or on x86-64 processors with AVX2
 * and FMA four at a time.
 *
 * Method:   x = 2^k z with z in [0.6875, 1.375) (k from the bits of x
 *           less those of 0.6875), and z falls in one of 128 subintervals
 *           by its top seven fraction bits; log_tab gives for each an invc
 *           near the reciprocal of its middle, with log c = -log(invc)
 *           as a sum of two doubles.  Then r = z invc - 1 is a single FMA
 *           rounding of z/c - 1, |r| < 2^-7, and
 *             log x = k ln2 + log c + log1p(r),
 *           ln2 in two parts (the high one short, so k times it is
 *           exact), k ln2 + log c summed with its rounding error kept
 *           (TwoSum), and log1p(r) = r + r^2 P(r), P the Taylor
 *           polynomial to r^9 (error below 2^-64 relative for |r| < 2^-7).
 *           The two subintervals around 1 have c = 1 exactly, so near 1
 *           the result is log1p(r) of an exact r, with no cancellation.
 * Special cases: lanes holding 0, a negative number, a subnormal, an
 *           infinity or a NaN go to libm, with the rest of their four.
 * Accuracy: never more than 1 ulp from libm, and equal to it for over
 *           99 % of arguments: 2.4 M in six ranges
 *           (tests/core/test_vecmath.c) and 4 M across the whole range when
 *           it was written.
 * The table, by exact decimal arithmetic:
 *
 *   from decimal import Decimal, getcontext
 *   getcontext().prec = 60
 *   for i in range(128):
 *       if i in (79, 80):
 *           invc = 1.0
 *       else:
 *           lo = (Decimal(11) / 8 + Decimal(i) / 128) / 2 if i < 80 \
 *               else 1 + Decimal(i - 80) / 128
 *           w = Decimal(1) / (256 if i < 80 else 128)
 *           invc = float(1 / (lo + w / 2))
 *       l = -Decimal(invc).ln()
 *       lhi = float(l); llo = float(l - Decimal(lhi))
 *       print("{%s, %s, %s}," % (float.hex(invc), float.hex(lhi),
 *                                float.hex(llo)))
 */
#ifdef LOSS_LOG_AVX2
/* clang-format off */
static const double log_tab[128][3] = {
    {0x1.734f0c541fe8dp+0, -0x1.7cc7f7db46a0ep-2, -0x1.e3c7fdc323c2dp-56},
    {0x1.713786d9c7c09p+0, -0x1.76feecb947176p-2, 0x1.398d9eb4ea363p-56},
    {0x1.6f26016f26017p+0, -0x1.713e33a46a17cp-2, 0x1.f6cf40b5c71a6p-57},
    {0x1.6d1a62681c861p+0, -0x1.6b85b4cffa3fdp-2, 0x1.1af2c8dafcb08p-57},
    {0x1.6b1490aa31a3dp+0, -0x1.65d558d4ce00bp-2, 0x1.4e05a4748480ap-56},
    {0x1.691473a88d0c0p+0, -0x1.602d08af091ecp-2, -0x1.a45db7cfd9230p-56},
    {0x1.6719f3601671ap+0, -0x1.5a8cadbbedfa1p-2, -0x1.64f5081307f22p-60},
    {0x1.6524f853b4aa3p+0, -0x1.54f431b7be1a8p-2, 0x1.0b3f6ef6ae452p-58},
    {0x1.63356b88ac0dep+0, -0x1.4f637ebba9810p-2, 0x1.68cb3124b9245p-56},
    {0x1.614b36831ae94p+0, -0x1.49da7f3bcc420p-2, 0x1.d964a168ccacbp-57},
    {0x1.5f66434292dfcp+0, -0x1.44591e0539f49p-2, -0x1.a76d6dc2782dap-59},
    {0x1.5d867c3ece2a5p+0, -0x1.3edf463c1683ep-2, 0x1.c852fe587def8p-57},
    {0x1.5babcc647fa91p+0, -0x1.396ce359bbf53p-2, 0x1.5c5663663d163p-59},
    {0x1.59d61f123ccaap+0, -0x1.3401e12aecba0p-2, -0x1.f95523adc5c9fp-57},
    {0x1.5805601580560p+0, -0x1.2e9e2bce12286p-2, 0x1.f3ed72e23e134p-57},
    {0x1.56397ba7c52e2p+0, -0x1.2941afb186b7cp-2, -0x1.6a4678ebaa300p-59},
    {0x1.54725e6bb82fep+0, -0x1.23ec5991eba49p-2, -0x1.76eba35bbf0dfp-61},
    {0x1.52aff56a8054bp+0, -0x1.1e9e1678899f5p-2, -0x1.64b0dd2687939p-58},
    {0x1.50f22e111c4c5p+0, -0x1.1956d3b9bc2f9p-2, -0x1.0e75a3542856fp-58},
    {0x1.4f38f62dd4c9bp+0, -0x1.14167ef367784p-2, -0x1.ef824daaf53e9p-56},
    {0x1.4d843bedc2c4cp+0, -0x1.0edd060b78082p-2, -0x1.2d4b610d7d4f5p-57},
    {0x1.4bd3edda68fe1p+0, -0x1.09aa572e6c6d4p-2, -0x1.f9e17343426a9p-56},
    {0x1.4a27fad76014ap+0, -0x1.047e60cde83b7p-2, -0x1.08869cbf9e344p-56},
    {0x1.4880522014880p+0, -0x1.feb2233ea07cbp-3, -0x1.8de00938b4c30p-61},
    {0x1.46dce34596066p+0, -0x1.f474b134df228p-3, 0x1.9f1df7b5daab7p-60},
    {0x1.453d9e2c776cap+0, -0x1.ea4449f04aaf5p-3, 0x1.f33919ab94074p-57},
    {0x1.43a2730abee4dp+0, -0x1.e020cc6235ab5p-3, 0x1.f0adb91423f18p-57},
    {0x1.420b5265e5951p+0, -0x1.d60a17f903514p-3, 0x1.50df841a71b7ap-57},
    {0x1.40782d10e6566p+0, -0x1.cc000c9db3c52p-3, -0x1.67a2a8500729ep-58},
    {0x1.3ee8f42a5af07p+0, -0x1.c2028ab17f9b5p-3, -0x1.c11aa3853a5f0p-57},
    {0x1.3d5d991aa75c6p+0, -0x1.b811730b823d4p-3, 0x1.d7c46328983c6p-58},
    {0x1.3bd60d9232955p+0, -0x1.ae2ca6f672bd8p-3, 0x1.a4a356155f779p-57},
    {0x1.3a524387ac822p+0, -0x1.a454082e6ab03p-3, 0x1.e0df823a3cb3dp-58},
    {0x1.38d22d366088ep+0, -0x1.9a8778debaa3ap-3, -0x1.28fbfb0e3f0fcp-58},
    {0x1.3755bd1c945eep+0, -0x1.90c6db9fcbcdbp-3, 0x1.357718d7ca4cfp-58},
    {0x1.35dce5f9f2af8p+0, -0x1.871213750e994p-3, 0x1.a97a0ca115d60p-57},
    {0x1.34679ace01346p+0, -0x1.7d6903caf5acdp-3, 0x1.0b17c301d6e14p-57},
    {0x1.32f5ced6a1dfap+0, -0x1.73cb9074fd14dp-3, 0x1.721a000b4cf01p-57},
    {0x1.3187758e9ebb6p+0, -0x1.6a399dabbd383p-3, -0x1.76332bd4b341fp-57},
    {0x1.301c82ac40260p+0, -0x1.60b3100b09474p-3, -0x1.526cee0fd7f4ap-57},
    {0x1.2eb4ea1fed14bp+0, -0x1.5737cc9018cddp-3, 0x1.00b28ef013c72p-57},
    {0x1.2d50a012d50a0p+0, -0x1.4dc7b897bc1c7p-3, -0x1.b60ae1ff0e82ep-59},
    {0x1.2bef98e5a3711p+0, -0x1.4462b9dc9b3dcp-3, 0x1.85388d830c709p-59},
    {0x1.2a91c92f3c105p+0, -0x1.3b08b6757f2a7p-3, -0x1.5e1ad9be0a4cdp-57},
    {0x1.293725bb804a5p+0, -0x1.31b994d3a4f86p-3, 0x1.1238b5efe0665p-57},
    {0x1.27dfa38a1ce4dp+0, -0x1.28753bc11aba2p-3, 0x1.7394d9fa33313p-57},
    {0x1.268b37cd60127p+0, -0x1.1f3b925f25d44p-3, -0x1.08b27be4e6b15p-57},
    {0x1.2539d7e9177b2p+0, -0x1.160c8024b27b0p-3, 0x1.355bfd870afebp-59},
    {0x1.23eb79717605bp+0, -0x1.0ce7ecdccc28bp-3, -0x1.1b57fea88da98p-59},
    {0x1.22a0122a0122ap+0, -0x1.03cdc0a51ec0dp-3, -0x1.19e2d3f8b7d10p-57},
    {0x1.21579804855e6p+0, -0x1.f57bc7d9005dbp-4, 0x1.d361574fb24e2p-58},
    {0x1.2012012012012p+0, -0x1.e3707ee30487bp-4, -0x1.9399d9aaf3b33p-59},
    {0x1.1ecf43c7fb84cp+0, -0x1.d179788219362p-4, 0x1.b12841044a96cp-58},
    {0x1.1d8f5672e4abdp+0, -0x1.bf968769fca18p-4, 0x1.06e4fb7af9c69p-58},
    {0x1.1c522fc1ce059p+0, -0x1.adc77ee5aea8ep-4, -0x1.d7d8f39bee658p-58},
    {0x1.1b17c67f2bae3p+0, -0x1.9c0c32d4d254dp-4, 0x1.627a0e199f569p-58},
    {0x1.19e0119e0119ep+0, -0x1.8a6477a91dc29p-4, 0x1.3d4190a482421p-58},
    {0x1.18ab083902bdbp+0, -0x1.78d02263d82d7p-4, -0x1.cbca5b4fdb87ep-58},
    {0x1.1778a191bd684p+0, -0x1.674f089365a78p-4, -0x1.ca64e9980e048p-59},
    {0x1.1648d50fc3201p+0, -0x1.55e10050e0382p-4, -0x1.9a0629e3973e4p-58},
    {0x1.151b9a3fdd5c9p+0, -0x1.4485e03dbdfb0p-4, -0x1.3ba349aadbc6dp-58},
    {0x1.13f0e8d344724p+0, -0x1.333d7f8183f4ap-4, 0x1.adaa06e211e9ep-59},
    {0x1.12c8b89edc0acp+0, -0x1.2207b5c7854a1p-4, -0x1.b3f0431efb154p-58},
    {0x1.11a3019a74826p+0, -0x1.10e45b3cae829p-4, -0x1.9b5ed72e6d974p-58},
    {0x1.107fbbe011080p+0, -0x1.ffa6911ab9309p-5, 0x1.cd9f1f95c2ef1p-59},
    {0x1.0f5edfab325a2p+0, -0x1.dda8adc67ee59p-5, 0x1.31936790bb3b2p-59},
    {0x1.0e40655826011p+0, -0x1.bbcebfc68f424p-5, 0x1.cd1862f854848p-59},
    {0x1.0d24456359e3ap+0, -0x1.9a187b573de81p-5, -0x1.b13b26f298a6ap-64},
    {0x1.0c0a7868b4171p+0, -0x1.788595a3577c8p-5, -0x1.2f7c4c5b3c8bdp-62},
    {0x1.0af2f722eecb5p+0, -0x1.5715c4c03cee1p-5, -0x1.5101dc4ebf91fp-59},
    {0x1.09ddba6af8360p+0, -0x1.35c8bfaa13069p-5, 0x1.50830a65543a8p-63},
    {0x1.08cabb37565e2p+0, -0x1.149e3e4005a8dp-5, 0x1.a9a4168fcebebp-60},
    {0x1.07b9f29b8eae2p+0, -0x1.e72bf2813ce6ap-6, 0x1.8a4bba6a354fap-60},
    {0x1.06ab59c7912fbp+0, -0x1.a55f548c5c427p-6, -0x1.f60d2fc36a0d9p-61},
    {0x1.059eea0727586p+0, -0x1.63d6178690bbep-6, 0x1.18ed4d357c9dcp-60},
    {0x1.04949cc1664c5p+0, -0x1.228fb1fea2e0ap-6, -0x1.3284991fe3d5cp-61},
    {0x1.038c6b78247fcp+0, -0x1.c317384c75f0dp-7, -0x1.806208c04c21fp-61},
    {0x1.02864fc7729e9p+0, -0x1.41929f968330cp-7, -0x1.3aae809b43dd0p-61},
    {0x1.0182436517a37p+0, -0x1.8121214586b02p-8, 0x1.c7d68c0d910f2p-62},
    {0x1.0000000000000p+0, 0x0.0p+0, 0x0.0p+0},
    {0x1.0000000000000p+0, 0x0.0p+0, 0x0.0p+0},
    {0x1.fa11caa01fa12p-1, 0x1.7dc475f810a69p-7, 0x1.74944bc161072p-61},
    {0x1.f6310aca0dbb5p-1, 0x1.3cea44346a584p-6, -0x1.865ad48159d00p-61},
    {0x1.f25f644230ab5p-1, 0x1.b9fc027af919ap-6, -0x1.90ae69229dc86p-60},
    {0x1.ee9c7f8458e02p-1, 0x1.1b0d98923d97fp-5, -0x1.74d7444dd6241p-59},
    {0x1.eae807aba01ebp-1, 0x1.58a5bafc8e4d3p-5, -0x1.cab8569c56e40p-64},
    {0x1.e741aa59750e4p-1, 0x1.95c830ec8e3f2p-5, 0x1.eb41d00a417e9p-60},
    {0x1.e3a9179dc1a73p-1, 0x1.d276b8adb0b56p-5, 0x1.078f14c95ff53p-59},
    {0x1.e01e01e01e01ep-1, 0x1.075983598e471p-4, 0x1.006d2999e22dcp-58},
    {0x1.dca01dca01dcap-1, 0x1.253f62f0a1417p-4, 0x1.1f6d34e01d981p-61},
    {0x1.d92f2231e7f8ap-1, 0x1.42edcbea646eep-4, -0x1.511583653349bp-58},
    {0x1.d5cac807572b2p-1, 0x1.60658a93750c4p-4, -0x1.f108b1d8436d3p-59},
    {0x1.d272ca3fc5b1ap-1, 0x1.7da766d7b12d0p-4, 0x1.a2240644d7da2p-59},
    {0x1.cf26e5c44bfc6p-1, 0x1.9ab42462033aep-4, -0x1.a099e1c184e8ep-59},
    {0x1.cbe6d9601cbe7p-1, 0x1.b78c82bb0eda0p-4, -0x1.3ef0e61f9b03cp-58},
    {0x1.c8b265afb8a42p-1, 0x1.d4313d66cb35dp-4, 0x1.b90dd951d90fap-58},
    {0x1.c5894d10d4986p-1, 0x1.f0a30c01162a4p-4, 0x1.8be64b8b7759bp-59},
    {0x1.c26b5392ea01cp-1, 0x1.0671512ca596fp-3, -0x1.2f39b81479b67p-58},
    {0x1.bf583ee868d8bp-1, 0x1.14785846742acp-3, 0x1.94409f1d3f83ap-60},
    {0x1.bc4fd65883e7bp-1, 0x1.2266f190a5acdp-3, -0x1.dab840e7f6177p-57},
    {0x1.b951e2b18ff23p-1, 0x1.303d718e47fd5p-3, -0x1.b5ae71f658247p-57},
    {0x1.b65e2e3beee05p-1, 0x1.3dfc2b0ecc62ap-3, 0x1.ba62b8c13f7f4p-57},
    {0x1.b37484ad806cep-1, 0x1.4ba36f39a55e5p-3, -0x1.f767e433c98aap-57},
    {0x1.b094b31d922a4p-1, 0x1.59338d9982085p-3, 0x1.8d16eaaba9419p-57},
    {0x1.adbe87f94905ep-1, 0x1.66acd4272ad51p-3, -0x1.9201c9c3d5165p-59},
    {0x1.aaf1d2f87ebfdp-1, 0x1.740f8f54037a3p-3, 0x1.6d9bf9d57b326p-58},
    {0x1.a82e65130e159p-1, 0x1.815c0a14357e9p-3, 0x1.141b7f8c5fa9ep-58},
    {0x1.a574107688a4ap-1, 0x1.8e928de886d41p-3, 0x1.2589eb96a6240p-59},
    {0x1.a2c2a87c51ca0p-1, 0x1.9bb362e7dfb85p-3, -0x1.51439c1ff83e7p-58},
    {0x1.a01a01a01a01ap-1, 0x1.a8becfc882f19p-3, -0x1.a8c37918c39ebp-58},
    {0x1.9d79f176b682dp-1, 0x1.b5b519e8fb5a6p-3, -0x1.d5d8023e61e5fp-57},
    {0x1.9ae24ea5510dap-1, 0x1.c2968558c18c2p-3, 0x1.6108e3ae024acp-60},
    {0x1.9852f0d8ec0ffp-1, 0x1.cf6354e09c5ddp-3, 0x1.339a07d55b696p-57},
    {0x1.95cbb0be377aep-1, 0x1.dc1bca0abec7bp-3, 0x1.c698a33316dfbp-58},
    {0x1.934c67f9b2ce6p-1, 0x1.e8c0252aa5a60p-3, -0x1.dc074737f9135p-60},
    {0x1.90d4f120190d5p-1, 0x1.f550a564b7b37p-3, -0x1.13a09202fe73dp-57},
    {0x1.8e6527af1373fp-1, 0x1.00e6c45ad501dp-2, -0x1.3b9568ff6feadp-57},
    {0x1.8bfce8062ff3ap-1, 0x1.071b85fcd590dp-2, 0x1.08b83fcbdef40p-57},
    {0x1.899c0f601899cp-1, 0x1.0d46b579ab74bp-2, 0x1.21f640e1e5ec9p-56},
    {0x1.87427bcc092b9p-1, 0x1.136870293a8b0p-2, 0x1.86cc531dba494p-57},
    {0x1.84f00c2780614p-1, 0x1.1980d2dd4236fp-2, -0x1.02c2e4f1b2eb9p-56},
    {0x1.82a4a0182a4a0p-1, 0x1.1f8ff9e48a2f3p-2, -0x1.93fbf3418960dp-57},
    {0x1.8060180601806p-1, 0x1.2596010df763ap-2, -0x1.9eed8ae0ebd3cp-59},
    {0x1.7e225515a4f1dp-1, 0x1.2b9303ab89d25p-2, -0x1.85ad7f614ab51p-58},
    {0x1.7beb3922e017cp-1, 0x1.31871c9544185p-2, -0x1.ea3598981366fp-57},
    {0x1.79baa6bb6398bp-1, 0x1.3772662bfd85cp-2, 0x1.02a7589fba088p-57},
    {0x1.77908119ac60dp-1, 0x1.3d54fa5c1f710p-2, 0x1.53668e578d9cdp-58},
    {0x1.756cac201756dp-1, 0x1.432ef2a04e813p-2, -0x1.83262e2b59206p-57},
};
/* clang-format on */

/* k (as doubles) and z of x = 2^k z, and the table row of each lane. */
__attribute__((target("avx2,fma"))) static __m256d
log4_split(__m256i ix, __m256d *z, __m128i *row)
{
    const __m256i tmp =
        _mm256_sub_epi64(ix, _mm256_set1_epi64x(0x3fe6000000000000));
    /* tmp >> 52, arithmetic: the top 32 bits of each lane shifted by 20 */
    const __m256i k = _mm256_permutevar8x32_epi32(
        _mm256_srai_epi32(tmp, 20), _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7));
    const __m256i i = _mm256_permutevar8x32_epi32(
        _mm256_and_si256(_mm256_srli_epi64(tmp, 45), _mm256_set1_epi64x(127)),
        _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));

    *z = _mm256_castsi256_pd(_mm256_sub_epi64(
        ix, _mm256_and_si256(
                tmp, _mm256_set1_epi64x((int64_t)0xfff0000000000000u))));
    /* three doubles a row */
    *row = _mm_mullo_epi32(_mm256_castsi256_si128(i), _mm_set1_epi32(3));
    return _mm256_cvtepi32_pd(_mm256_castsi256_si128(k));
}

/* log1p(r) - r = r^2 P(r), P Taylor to r^9 (its leading -1/2 included). */
__attribute__((target("avx2,fma"))) static __m256d log4_tail(__m256d r)
{
    static const double c[8] = {0x1.c71c71c71c71cp-4, -0x1p-3,
                                0x1.2492492492492p-3, -0x1.5555555555555p-3,
                                0x1.999999999999ap-3, -0x1p-2,
                                0x1.5555555555555p-2, -0x1p-1};
    __m256d p = _mm256_set1_pd(c[0]);
    int j;

    for (j = 1; j < 8; j++)
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c[j]));
    return _mm256_mul_pd(_mm256_mul_pd(r, r), p);
}

/* log of the four positive normal doubles ix (as bits) into y. */
__attribute__((target("avx2,fma"))) static void log4(double *y, __m256i ix)
{
    __m256d z, kd, r, lhi, a, w, bb, err, hi, lo;
    __m128i row;

    kd = log4_split(ix, &z, &row);
    r = _mm256_fmsub_pd(z, _mm256_i32gather_pd(&log_tab[0][0], row, 8),
                        _mm256_set1_pd(1.0));
    lhi = _mm256_i32gather_pd(&log_tab[0][1], row, 8);
    lo = _mm256_i32gather_pd(&log_tab[0][2], row, 8);
    /* w + err = k ln2_hi + log c_hi exactly (TwoSum) */
    a = _mm256_mul_pd(kd, _mm256_set1_pd(0x1.62e42fefa3800p-1));
    w = _mm256_add_pd(a, lhi);
    bb = _mm256_sub_pd(w, a);
    err = _mm256_add_pd(_mm256_sub_pd(a, _mm256_sub_pd(w, bb)),
                        _mm256_sub_pd(lhi, bb));
    /* hi + (w - hi + r) = w + r exactly, |w| >= |r| or w = 0 */
    hi = _mm256_add_pd(w, r);
    lo = _mm256_add_pd(
        _mm256_add_pd(_mm256_sub_pd(w, hi), r),
        _mm256_add_pd(err, _mm256_fmadd_pd(
                               kd, _mm256_set1_pd(0x1.ef35793c76730p-45), lo)));
    _mm256_storeu_pd(y, _mm256_add_pd(hi, _mm256_add_pd(lo, log4_tail(r))));
}

/* loss_log_array's fours; returns how many elements it did. */
__attribute__((target("avx2,fma"))) static size_t log_avx2(const double *x,
                                                           double *y, size_t n)
{
    const __m256i lo = _mm256_set1_epi64x(0x000fffffffffffff);
    const __m256i hi = _mm256_set1_epi64x(0x7ff0000000000000);
    size_t i, j;

    for (i = 0; i + 4 <= n; i += 4) {
        __m256i ix = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        __m256i ok = _mm256_and_si256(_mm256_cmpgt_epi64(ix, lo),
                                      _mm256_cmpgt_epi64(hi, ix));

        if (_mm256_movemask_pd(_mm256_castsi256_pd(ok)) == 0xf)
            log4(y + i, ix);
        else
            for (j = i; j < i + 4; j++)
                y[j] = log(x[j]);
    }
    return i;
}
#endif

#ifdef LOSS_LOG_AVX2
/* loss_exp of four doubles, every operation as in loss_exp (lossInt.h) in
 * the same order and without fused multiply-adds, so each lane has the
 * same bits; for |x| <= 708 (exp4_any checks). */
__attribute__((target("avx2"))) static inline __m256d exp4(__m256d x)
{
    const __m256d shift = _mm256_set1_pd(0x1.8p52);
    const __m256d c2 = _mm256_set1_pd(0x1.ffffffffffdbdp-2);
    const __m256d c3 = _mm256_set1_pd(0x1.555555555543cp-3);
    const __m256d c4 = _mm256_set1_pd(0x1.55555cf172b91p-5);
    const __m256d c5 = _mm256_set1_pd(0x1.1111167a4d017p-7);
    __m256d kd, r, r2, tail, tmp, s;
    __m256i ki, row;

    kd = _mm256_add_pd(
        _mm256_mul_pd(x, _mm256_set1_pd(0x1.71547652b82fep0 * LOSS_EXP_N)),
        shift);
    ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, shift);
    r = _mm256_add_pd(
        _mm256_add_pd(x,
                      _mm256_mul_pd(kd, _mm256_set1_pd(-0x1.62e42fefa0000p-8))),
        _mm256_mul_pd(kd, _mm256_set1_pd(-0x1.cf79abc9e3b3ap-47)));
    /* two table words a row: the tail (a double's bits), then 2^(j/N) */
    row = _mm256_slli_epi64(
        _mm256_and_si256(ki, _mm256_set1_epi64x(LOSS_EXP_N - 1)), 1);
    tail =
        _mm256_i64gather_pd((const double *)(const void *)loss_exp_tab, row, 8);
    s = _mm256_castsi256_pd(_mm256_add_epi64(
        _mm256_i64gather_epi64(
            (const long long *)(const void *)(loss_exp_tab + 1), row, 8),
        _mm256_slli_epi64(ki, 45)));
    r2 = _mm256_mul_pd(r, r);
    tmp = _mm256_add_pd(
        _mm256_add_pd(
            _mm256_add_pd(tail, r),
            _mm256_mul_pd(r2, _mm256_add_pd(c2, _mm256_mul_pd(r, c3)))),
        _mm256_mul_pd(_mm256_mul_pd(r2, r2),
                      _mm256_add_pd(c4, _mm256_mul_pd(r, c5))));
    return _mm256_add_pd(s, _mm256_mul_pd(s, tmp));
}

/* loss_exp of each lane of x: exp4 when every |x| <= 708, else one lane
 * at a time through loss_exp, which leaves those past it to libm. */
__attribute__((target("avx2"))) static inline __m256d exp4_any(__m256d x)
{
    const __m256d big = _mm256_set1_pd(708.0);
    const __m256d mag = _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX));
    double v[4];
    int j;

    if (_mm256_movemask_pd(
            _mm256_cmp_pd(_mm256_and_pd(x, mag), big, _CMP_LE_OQ)) == 0xf)
        return exp4(x);
    _mm256_storeu_pd(v, x);
    for (j = 0; j < 4; j++)
        v[j] = loss_exp(v[j]);
    return _mm256_loadu_pd(v);
}

/* loss_sum_exp's fours into the lanes of s; returns how many it did. */
__attribute__((target("avx2"))) static size_t
sum_exp_avx2(const double *x, size_t n, double m, double *s)
{
    const __m256d mm = _mm256_set1_pd(m);
    __m256d acc = _mm256_setzero_pd();
    size_t i;

    for (i = 0; i + 4 <= n; i += 4)
        acc = _mm256_add_pd(
            acc, exp4_any(_mm256_sub_pd(_mm256_loadu_pd(x + i), mm)));
    _mm256_storeu_pd(s, acc);
    return i;
}

/* loss_exp_array's fours; returns how many elements it did. */
__attribute__((target("avx2"))) static size_t exp_avx2(const double *x,
                                                       double *y, size_t n)
{
    size_t i;

    for (i = 0; i + 4 <= n; i += 4)
        _mm256_storeu_pd(y + i, exp4_any(_mm256_loadu_pd(x + i)));
    return i;
}
#endif

void loss_exp_array(const double *x, double *y, size_t n)
{
    size_t i = 0;

#ifdef LOSS_LOG_AVX2
    if (__builtin_cpu_supports("avx2"))
        i = exp_avx2(x, y, n);
#endif
    for (; i < n; i++)
        y[i] = loss_exp(x[i]);
}

double loss_sum_exp(const double *x, size_t n, double m)
{
    double s[LANES] = {0.0, 0.0, 0.0, 0.0};
    size_t i = 0;

#ifdef LOSS_LOG_AVX2
    if (__builtin_cpu_supports("avx2"))
        i = sum_exp_avx2(x, n, m, s);
#endif
    for (; i < n; i++)
        s[i % LANES] += loss_exp(x[i] - m);
    return lanes_total(s);
}

void loss_log_array(const double *x, double *y, size_t n)
{
    size_t i = 0;

#ifdef LOSS_LOG_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        i = log_avx2(x, y, n);
#endif
    for (; i < n; i++)
        y[i] = log(x[i]);
}
