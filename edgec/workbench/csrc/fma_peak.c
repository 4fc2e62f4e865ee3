/* 10 independent chains of 256-bit FMAs: the core's FMA throughput; 12 chains of
   vpmaddwd + vpaddd: its exact AVX2 int8 multiply-accumulate throughput. */
#define _POSIX_C_SOURCE 200112L
#include <immintrin.h>
#include <time.h>

volatile float edgec_fma_sink; /* keeps the chains' results alive */

double edgec_fma_per_second(long iterations);
double edgec_fma_per_second(long iterations)
{
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = _mm256_set1_ps(1.1f), a2 = _mm256_set1_ps(1.2f);
    __m256 a3 = _mm256_set1_ps(1.3f), a4 = _mm256_set1_ps(1.4f), a5 = _mm256_set1_ps(1.5f);
    __m256 a6 = _mm256_set1_ps(1.6f), a7 = _mm256_set1_ps(1.7f), a8 = _mm256_set1_ps(1.8f);
    __m256 a9 = _mm256_set1_ps(1.9f);
    const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    struct timespec t0, t1;
    float out[8];
    long i;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < iterations; ++i) {
        a0 = _mm256_fmadd_ps(a0, b, c); a1 = _mm256_fmadd_ps(a1, b, c);
        a2 = _mm256_fmadd_ps(a2, b, c); a3 = _mm256_fmadd_ps(a3, b, c);
        a4 = _mm256_fmadd_ps(a4, b, c); a5 = _mm256_fmadd_ps(a5, b, c);
        a6 = _mm256_fmadd_ps(a6, b, c); a7 = _mm256_fmadd_ps(a7, b, c);
        a8 = _mm256_fmadd_ps(a8, b, c); a9 = _mm256_fmadd_ps(a9, b, c);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    a0 = _mm256_add_ps(a0, _mm256_add_ps(a8, a9));
    _mm256_storeu_ps(out, a0);
    edgec_fma_sink = out[0];
    return (double)iterations * 10.0 /
           ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
}

/* vpmaddwd + vpaddd pairs per second (each pair: 16 int16 products into 8 int32 sums),
   written as assembly so that no compiler folds the repeated products. */
double edgec_madd_per_second(long iterations);
double edgec_madd_per_second(long iterations)
{
    struct timespec t0, t1;
    long i;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < iterations; ++i) {
        __asm__ volatile(
            "vpmaddwd %%ymm0, %%ymm1, %%ymm2\n\tvpaddd %%ymm2, %%ymm8, %%ymm8\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm3\n\tvpaddd %%ymm3, %%ymm9, %%ymm9\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm4\n\tvpaddd %%ymm4, %%ymm10, %%ymm10\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm5\n\tvpaddd %%ymm5, %%ymm11, %%ymm11\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm6\n\tvpaddd %%ymm6, %%ymm12, %%ymm12\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm7\n\tvpaddd %%ymm7, %%ymm13, %%ymm13\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm2\n\tvpaddd %%ymm2, %%ymm14, %%ymm14\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm3\n\tvpaddd %%ymm3, %%ymm15, %%ymm15\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm4\n\tvpaddd %%ymm4, %%ymm8, %%ymm8\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm5\n\tvpaddd %%ymm5, %%ymm9, %%ymm9\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm6\n\tvpaddd %%ymm6, %%ymm10, %%ymm10\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm7\n\tvpaddd %%ymm7, %%ymm11, %%ymm11\n\t"
            ::: "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)iterations * 12.0 /
           ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
}
