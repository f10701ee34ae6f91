/* What NumPy asks of OpenBLAS, call by call: the tracer behind traced_floor.py.

   Preloaded into a child process (LD_PRELOAD), this library defines the float32 entry
   points that NumPy's wheels call, scipy_cblas_sgemm64_ (C = op(A) op(B), a matmul) and
   scipy_cblas_sgemv64_ (y = op(A) x, a matrix times a vector): each writes one line,
   "sgemm ORDER TRANS_A TRANS_B M N K" or "sgemv ORDER TRANS M N", while tracing is on,
   then hands the call to OpenBLAS's own function, found by name in the loaded library
   whose file name holds "openblas". gemm_trace_to(path) turns tracing on into that file,
   gemm_trace_to(NULL) off; the child calls it through ctypes. Integers are 64-bit: the
   "64_" functions are OpenBLAS's ILP64 interface. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef int64_t blasint;
typedef void (*sgemm_fn)(int, int, int, blasint, blasint, blasint, float, const float *,
                         blasint, const float *, blasint, float, float *, blasint);
typedef void (*sgemv_fn)(int, int, blasint, blasint, float, const float *, blasint,
                         const float *, blasint, float, float *, blasint);

static FILE *trace;
static sgemm_fn real_sgemm;
static sgemv_fn real_sgemv;

static int find_openblas(struct dl_phdr_info *info, size_t size, void *unused) {
    (void)size, (void)unused;
    if (!strstr(info->dlpi_name, "openblas")) return 0;
    void *lib = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
    if (!lib) return 0;
    real_sgemm = (sgemm_fn)dlsym(lib, "scipy_cblas_sgemm64_");
    real_sgemv = (sgemv_fn)dlsym(lib, "scipy_cblas_sgemv64_");
    return real_sgemm && real_sgemv;
}

static void find_real(void) {
    if (!real_sgemm) dl_iterate_phdr(find_openblas, NULL);
}

void scipy_cblas_sgemm64_(int order, int ta, int tb, blasint M, blasint N, blasint K,
                          float alpha, const float *A, blasint lda, const float *B,
                          blasint ldb, float beta, float *C, blasint ldc) {
    find_real();
    if (trace) fprintf(trace, "sgemm %d %d %d %ld %ld %ld\n", order, ta, tb, (long)M, (long)N,
                       (long)K);
    real_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void scipy_cblas_sgemv64_(int order, int ta, blasint M, blasint N, float alpha,
                          const float *A, blasint lda, const float *x, blasint incx,
                          float beta, float *y, blasint incy) {
    find_real();
    if (trace) fprintf(trace, "sgemv %d %d %ld %ld\n", order, ta, (long)M, (long)N);
    real_sgemv(order, ta, M, N, alpha, A, lda, x, incx, beta, y, incy);
}

void gemm_trace_to(const char *path) {
    if (trace) fclose(trace);
    trace = path ? fopen(path, "w") : NULL;
}
