/* LSTM's element-wise step in one pass, float32, AVX-512 (x86-64 with AVX-512F, checked at
 * run time by the caller through packed_isa()).
 *
 * For one sample, with a = x_t U + h_{t-1} W (+ b) in z = [a_i | a_f | a_g | a_o] (4H):
 *
 *     i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
 *     c_t = f ⊙ c_{t-1} + i ⊙ g       σ(c_t) = tanh(c_t)       out = o ⊙ tanh(c_t)
 *
 * i, f, g, o are written back into z (the trace the backward reads), c_t, tanh(c_t) and out
 * to their rows.  The generic loops make six passes over these rows (F(add_bias), F(act)
 * three times, F(lstm_cell_fwd), F(act), F(lstm_mul)); here each value is read once and
 * stays in a register.  sigmoid(a) = (1 + tanh(a/2)) / 2 and tanh is the loops' own float32
 * tanh (tanh__f32 in _loops.c: an odd polynomial below 0.625, 1 - 2 / (e^{2|x|} + 1) above),
 * 16 lanes at a time; the one division is a 14-bit reciprocal and one Newton step (relative
 * error below 2^-26, then rounded like the division: the tests compare with NumPy).
 * Used for the default activations (sigmoid gates, tanh) only; any other pair takes the
 * generic loops. */
#if defined(RNNKIT_PACKED)
#define RNNKIT_GATES_AVX512 1

__attribute__((target("avx512f"), always_inline))
static inline __m512 exp16(__m512 x)                  /* exp_f32 of _loops.c, 16 lanes */
{
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic), magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

__attribute__((target("avx512f"), always_inline))
static inline __m512 tanh16(__m512 x)                 /* tanh__f32 of _loops.c, 16 lanes */
{
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
    __m512 ax = _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_castps_si512(sign), _mm512_castps_si512(x)));
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    /* e^{2|x|}, 2|x| held at 88 (e^88 is still finite); NaN stays NaN */
    __m512 two_ax = _mm512_add_ps(ax, ax);
    __mmask16 big = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(44.0f), _CMP_GT_OQ);
    __m512 e = exp16(_mm512_mask_mov_ps(two_ax, big, _mm512_set1_ps(88.0f)));
    __m512 d = _mm512_add_ps(e, _mm512_set1_ps(1.0f));
    __m512 rcp = _mm512_rcp14_ps(d);                  /* 1/d: 14 bits, then one Newton step */
    rcp = _mm512_mul_ps(rcp, _mm512_fnmadd_ps(d, rcp, _mm512_set1_ps(2.0f)));
    __m512 q = _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), rcp, _mm512_set1_ps(1.0f));
    q = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(q),   /* the sign of x */
                                            _mm512_and_si512(_mm512_castps_si512(x),
                                                             _mm512_castps_si512(sign))));
    __mmask16 small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm512_mask_mov_ps(q, small, p);
}

/* 1 / (1 + e^{-x}), -x held in [-88, 88] (exp16's range; NaN stays NaN): one exp and one
 * reciprocal, where (1 + tanh(x/2)) / 2 would cost an exp, a polynomial and a reciprocal
 * (within a few units in the last place of each other) */
__attribute__((target("avx512f"), always_inline))
static inline __m512 sigmoid16(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 nx = _mm512_sub_ps(_mm512_setzero_ps(), x);
    __mmask16 lo = _mm512_cmp_ps_mask(nx, _mm512_set1_ps(-88.0f), _CMP_LT_OQ);
    __mmask16 hi = _mm512_cmp_ps_mask(nx, _mm512_set1_ps(88.0f), _CMP_GT_OQ);
    nx = _mm512_mask_mov_ps(_mm512_mask_mov_ps(nx, lo, _mm512_set1_ps(-88.0f)), hi,
                            _mm512_set1_ps(88.0f));
    __m512 d = _mm512_add_ps(exp16(nx), one);
    __m512 r = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}

/* One sample: z (4H, activated in place), b (4H or NULL), c_prev, c, act_c, out (H each) */
__attribute__((target("avx512f")))
static void lstm_gates_avx512(float *z, const float *b, const float *c_prev, float *c,
                              float *act_c, float *out, Py_ssize_t H)
{
    float *zi = z, *zf = z + H, *zg = z + 2 * H, *zo = z + 3 * H;
    for (Py_ssize_t j = 0; j < H; j += 16) {
        __mmask16 m = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1u);
        __m512 ai = _mm512_maskz_loadu_ps(m, zi + j), af = _mm512_maskz_loadu_ps(m, zf + j);
        __m512 ag = _mm512_maskz_loadu_ps(m, zg + j), ao = _mm512_maskz_loadu_ps(m, zo + j);
        if (b) {
            ai = _mm512_add_ps(ai, _mm512_maskz_loadu_ps(m, b + j));
            af = _mm512_add_ps(af, _mm512_maskz_loadu_ps(m, b + H + j));
            ag = _mm512_add_ps(ag, _mm512_maskz_loadu_ps(m, b + 2 * H + j));
            ao = _mm512_add_ps(ao, _mm512_maskz_loadu_ps(m, b + 3 * H + j));
        }
        __m512 i = sigmoid16(ai), f = sigmoid16(af), g = tanh16(ag), o = sigmoid16(ao);
        __m512 ct = _mm512_fmadd_ps(i, g, _mm512_mul_ps(f, _mm512_maskz_loadu_ps(m, c_prev + j)));
        __m512 tc = tanh16(ct);
        _mm512_mask_storeu_ps(zi + j, m, i);
        _mm512_mask_storeu_ps(zf + j, m, f);
        _mm512_mask_storeu_ps(zg + j, m, g);
        _mm512_mask_storeu_ps(zo + j, m, o);
        _mm512_mask_storeu_ps(c + j, m, ct);
        _mm512_mask_storeu_ps(act_c + j, m, tc);
        _mm512_mask_storeu_ps(out + j, m, _mm512_mul_ps(o, tc));
    }
}
#endif /* RNNKIT_PACKED */
