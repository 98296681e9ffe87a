/* arena.c -- a region allocator for one request's JSON tree, the cJSON
 * hooks that draw from the calling thread's current arena, and the large
 * buffers of a request (arena.h). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS and madvise with _POSIX_C_SOURCE */
#include "arena.h"

#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define ARENA_ALIGN alignof(max_align_t)
#define ARENA_MIN_BLOCK ((size_t)64 << 10)
#define ARENA_MAX_BLOCK ((size_t)256 << 20)
/* Blocks from this size up are mapped for the request alone, asking for
 * transparent huge pages (a 1000x1000 body's tree is 64 MiB: 32 page
 * faults instead of 16384), and unmapped when it ends. */
#define ARENA_MAP_BLOCK ((size_t)2 << 20)

struct srv_arena_block {
    srv_arena_block *next;
    size_t size; /* bytes mapped or allocated, header included */
    int mapped;
};

/* The header rounded up so that the data after it stays aligned. */
#define BLOCK_HEAD                                                             \
    ((sizeof(srv_arena_block) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1))

/* The arena cJSON allocates from on this thread, or NULL. */
static _Thread_local srv_arena *current;

void srv_arena_init(srv_arena *a, void *buf, size_t cap, size_t hint)
{
    uintptr_t at = (uintptr_t)buf;
    size_t pad = (size_t)((ARENA_ALIGN - at % ARENA_ALIGN) % ARENA_ALIGN);

    a->first = buf;
    a->first_cap = cap;
    a->hint = hint;
    a->buf = buf;
    a->cap = buf != NULL && cap > pad ? cap : 0;
    a->used = a->cap ? pad : 0;
    a->grow = hint < ARENA_MIN_BLOCK   ? ARENA_MIN_BLOCK
              : hint > ARENA_MAX_BLOCK ? ARENA_MAX_BLOCK
                                       : hint;
    a->blocks = NULL;
    a->failed = 0;
}

static srv_arena_block *block_new(size_t size)
{
    srv_arena_block *b;
    void *m;

    if (size < ARENA_MAP_BLOCK) {
        if ((b = malloc(size)) != NULL)
            b->mapped = 0;
        return b;
    }
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (m == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(m, size, MADV_HUGEPAGE); /* advice only: may be refused */
#endif
    b = m;
    b->mapped = 1;
    return b;
}

/* Opens a block with room for at least n bytes; -1 when out of memory. */
static int arena_grow(srv_arena *a, size_t n)
{
    size_t room = a->grow > n ? a->grow : n;
    srv_arena_block *b;

    if (room > SIZE_MAX - BLOCK_HEAD ||
        (b = block_new(BLOCK_HEAD + room)) == NULL) {
        a->failed = 1;
        return -1;
    }
    b->next = a->blocks;
    b->size = BLOCK_HEAD + room;
    a->blocks = b;
    a->buf = (char *)b + BLOCK_HEAD;
    a->cap = room;
    a->used = 0;
    if (a->grow < ARENA_MAX_BLOCK)
        a->grow *= 2;
    return 0;
}

void *srv_arena_alloc(srv_arena *a, size_t n)
{
    void *p;

    if (n > SIZE_MAX - ARENA_ALIGN) {
        a->failed = 1;
        return NULL;
    }
    n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (n > a->cap - a->used && arena_grow(a, n) != 0)
        return NULL;
    p = a->buf + a->used;
    a->used += n;
    return p;
}

void srv_arena_cleanup(srv_arena *a)
{
    srv_arena_block *b = a->blocks, *next;

    for (; b != NULL; b = next) {
        next = b->next;
        if (b->mapped)
            munmap(b, b->size);
        else
            free(b);
    }
    a->blocks = NULL;
    a->buf = NULL;
    a->cap = a->used = 0;
}

void srv_arena_rewind(srv_arena *a)
{
    srv_arena_cleanup(a);
    srv_arena_init(a, a->first, a->first_cap, a->hint);
}

/* ---- cJSON hooks ---------------------------------------------------------
 * Every cJSON allocation of the process passes here.  Inside an arena,
 * memory is never freed piece by piece: a free there (cJSON_Delete on a
 * parse error) does nothing, and the arena goes at once in
 * srv_arena_cleanup.  Between srv_arena_enter and srv_arena_leave a thread
 * only builds the tree of its request, so it frees nothing that came from
 * elsewhere.  Outside an arena the hooks are malloc and free. */

static void *hook_malloc(size_t n)
{
    srv_arena *a = current;

    return a != NULL ? srv_arena_alloc(a, n) : malloc(n);
}

static void hook_free(void *p)
{
    if (current == NULL)
        free(p);
}

void srv_json_hooks(cJSON_Hooks *h)
{
    h->malloc_fn = hook_malloc;
    h->free_fn = hook_free;
}

static void hooks_set(void)
{
    cJSON_Hooks h;

    srv_json_hooks(&h);
    cJSON_InitHooks(&h);
}

void srv_json_hooks_install(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, hooks_set);
}

void srv_arena_enter(srv_arena *a)
{
    current = a;
}

void srv_arena_leave(void)
{
    current = NULL;
}

/* Method: cJSON_malloc goes through whatever hooks are installed; the
 * block it returns lies in the current arena's current block exactly when
 * those hooks are this file's and the arena is entered.  Otherwise the
 * block is given back. */
srv_arena *srv_arena_cjson(void)
{
    srv_arena *a = current;
    char *p;

    if (a == NULL || (p = cJSON_malloc(1)) == NULL)
        return NULL;
    if (a->buf != NULL && p >= a->buf && p < a->buf + a->used)
        return a;
    cJSON_free(p);
    return NULL;
}

void srv_memory_init(void)
{
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

void *srv_huge_malloc(size_t n)
{
    const size_t huge = (size_t)2 << 20;
    void *p;

    if (n < SRV_HUGE_MIN)
        return malloc(n ? n : 1);
    if (n > SIZE_MAX - huge)
        return NULL;
    n = (n + huge - 1) & ~(huge - 1);
    if (posix_memalign(&p, huge, n) != 0)
        return NULL;
#if defined(MADV_HUGEPAGE)
    (void)madvise(p, n, MADV_HUGEPAGE); /* advice only: may be refused */
#endif
    return p;
}
