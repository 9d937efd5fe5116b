// A persistent thread pool for the decode kernels: creating threads per matrix-vector product costs
// more than the product itself at decode rates, so workers live for the process and wait on a futex.
// Two kinds of job: every index run exactly once (hr_pool_run), or a range of items claimed in chunks
// by whichever threads are running (hr_pool_for) — on a shared machine a worker that has not been
// scheduled yet is not waited for: the caller takes its share.
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
#define CLOSED 0x8000u
#define ACTIVE 0x7FFFu

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int generation;      // bumped once per job
static _Atomic int sleepers;        // workers blocked in futex_wait on `generation`
static _Atomic int remaining;       // indexed jobs: workers with an index not yet finished
static _Atomic int state;           // (generation & 0xFFFF) << 16 | CLOSED | workers inside the job
static int started;                 // workers created so far
static int start_generation[MAX_WORKERS + 1];

// The current job (stable while any worker is inside it).
static int job_ranged;
static hr_task_fn job_fn;
static hr_range_fn job_range_fn;
static void *job_ctx;
static int job_n;
static size_t job_items, job_chunk;
static _Atomic size_t next_item;
static _Thread_local int in_task;

static long futex(_Atomic int *addr, int op, int val) {
    return syscall(SYS_futex, (int *)addr, op, val, NULL, NULL, 0);
}

static void run_ranges(void) {
    size_t lo;
    while ((lo = atomic_fetch_add(&next_item, job_chunk)) < job_items) {
        size_t hi = lo + job_chunk < job_items ? lo + job_chunk : job_items;
        job_range_fn(job_ctx, lo, hi);
    }
}

static void *worker(void *arg) {
    const int index = (int)(intptr_t)arg;
    int seen = start_generation[index];
    in_task = 1;
    for (;;) {
        int g, spins = 0;
        while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) { _mm_pause(); continue; }
            atomic_fetch_add(&sleepers, 1);
            if (atomic_load(&generation) == seen) futex(&generation, FUTEX_WAIT_PRIVATE, seen);
            atomic_fetch_sub(&sleepers, 1);
            spins = 0;
        }
        seen = g;
        // Join the job only if it is still the one announced and still open.
        int s = atomic_load(&state), joined = 0;
        while (((unsigned)s >> 16) == ((unsigned)g & 0xFFFF) && !(s & CLOSED)) {
            if (atomic_compare_exchange_weak(&state, &s, s + 1)) { joined = 1; break; }
        }
        if (!joined) continue;
        if (job_ranged) {
            run_ranges();
        } else if (index < job_n) {
            job_fn(job_ctx, index, job_n);
            if (atomic_fetch_sub(&remaining, 1) == 1) futex(&remaining, FUTEX_WAKE_PRIVATE, 1);
        }
        int after = atomic_fetch_sub(&state, 1) - 1;
        if ((after & CLOSED) && (after & ACTIVE) == 0) futex(&state, FUTEX_WAKE_PRIVATE, 1);
    }
    return NULL;
}

static void wait_zero(_Atomic int *v, int mask) {
    int spins = 0, x;
    while (((x = atomic_load(v)) & mask) != 0) {
        if (++spins < SPIN_ROUNDS) { _mm_pause(); continue; }
        futex(v, FUTEX_WAIT_PRIVATE, x);
    }
}

// Starts a job on `workers` workers: the job fields must be set by the caller, under the lock.
static void announce(int workers) {
    while (started < workers) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        start_generation[started + 1] = atomic_load(&generation);
        pthread_create(&tid, &attr, worker, (void *)(intptr_t)(started + 1));
        pthread_attr_destroy(&attr);
        started++;
    }
    const int g = atomic_load(&generation) + 1;
    atomic_store(&state, (int)(((unsigned)g & 0xFFFF) << 16));
    atomic_store_explicit(&generation, g, memory_order_release);
    if (atomic_load(&sleepers) > 0) futex(&generation, FUTEX_WAKE_PRIVATE, MAX_WORKERS);
}

void hr_pool_run(int n, hr_task_fn fn, void *ctx) {
    if (n > MAX_WORKERS + 1) n = MAX_WORKERS + 1;
    if (n <= 1 || in_task) {
        for (int t = 0; t < n || t == 0; t++) fn(ctx, t, n < 1 ? 1 : n);
        return;
    }
    pthread_mutex_lock(&pool_lock);
    job_ranged = 0; job_fn = fn; job_ctx = ctx; job_n = n;
    atomic_store(&remaining, n - 1);
    announce(n - 1);
    in_task = 1;
    fn(ctx, 0, n);
    in_task = 0;
    wait_zero(&remaining, ~0);
    atomic_fetch_or(&state, CLOSED);
    wait_zero(&state, ACTIVE);
    pthread_mutex_unlock(&pool_lock);
}

void hr_pool_for(int threads, size_t items, size_t chunk, hr_range_fn fn, void *ctx) {
    if (chunk < 1) chunk = 1;
    if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
    if (threads <= 1 || in_task || items <= chunk) {
        for (size_t lo = 0; lo < items; lo += chunk) fn(ctx, lo, lo + chunk < items ? lo + chunk : items);
        return;
    }
    pthread_mutex_lock(&pool_lock);
    job_ranged = 1; job_range_fn = fn; job_ctx = ctx; job_items = items; job_chunk = chunk;
    atomic_store(&next_item, 0);
    announce(threads - 1);
    in_task = 1;
    run_ranges();
    in_task = 0;
    atomic_fetch_or(&state, CLOSED);
    wait_zero(&state, ACTIVE);
    pthread_mutex_unlock(&pool_lock);
}
