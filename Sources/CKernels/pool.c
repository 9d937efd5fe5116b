// A persistent thread pool for the decode kernels: creating threads per matrix-vector product costs
// more than the product itself at decode rates, so workers live for the process and wait on a futex.
#define _GNU_SOURCE
#include "CKernels.h"
#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define SPIN_ROUNDS 4000

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int generation;      // bumped once per job
static _Atomic int sleepers;        // workers blocked in futex_wait
static _Atomic int remaining;       // workers of the current job not yet finished
static int started;                 // workers created so far
static hr_task_fn job_fn;
static void *job_ctx;
static int job_n;
static _Thread_local int in_task;
static int start_generation[MAX_WORKERS + 1];   // the generation each worker was created in (it waits for the next)

static long futex(_Atomic int *addr, int op, int val) {
    return syscall(SYS_futex, (int *)addr, op, val, NULL, NULL, 0);
}

static void *worker(void *arg) {
    int index = (int)(intptr_t)arg;   // 1-based: task index this worker runs
    int seen = start_generation[index];
    in_task = 1;
    for (;;) {
        int g;
        int spins = 0;
        while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) { _mm_pause(); continue; }
            atomic_fetch_add(&sleepers, 1);
            if (atomic_load(&generation) == seen) futex(&generation, FUTEX_WAIT_PRIVATE, seen);
            atomic_fetch_sub(&sleepers, 1);
            spins = 0;
        }
        seen = g;
        if (index < job_n) {
            job_fn(job_ctx, index, job_n);
            if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
                futex(&remaining, FUTEX_WAKE_PRIVATE, 1);
        }
    }
    return NULL;
}

void hr_pool_run(int n, hr_task_fn fn, void *ctx) {
    if (n > MAX_WORKERS + 1) n = MAX_WORKERS + 1;
    if (n <= 1 || in_task) {
        for (int t = 0; t < n || t == 0; t++) fn(ctx, t, n < 1 ? 1 : n);
        return;
    }
    pthread_mutex_lock(&pool_lock);
    while (started < n - 1) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        start_generation[started + 1] = atomic_load(&generation);
        pthread_create(&tid, &attr, worker, (void *)(intptr_t)(started + 1));
        pthread_attr_destroy(&attr);
        started++;
    }
    job_fn = fn; job_ctx = ctx; job_n = n;
    atomic_store(&remaining, n - 1);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    if (atomic_load(&sleepers) > 0) futex(&generation, FUTEX_WAKE_PRIVATE, MAX_WORKERS);
    in_task = 1;
    fn(ctx, 0, n);
    in_task = 0;
    int spins = 0;
    int r;
    while ((r = atomic_load_explicit(&remaining, memory_order_acquire)) != 0) {
        if (++spins < SPIN_ROUNDS) { _mm_pause(); continue; }
        futex(&remaining, FUTEX_WAIT_PRIVATE, r);
    }
    pthread_mutex_unlock(&pool_lock);
}
