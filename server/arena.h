/* arena.h -- a region allocator for one request's JSON tree, and cJSON's
 * allocation hooks that serve a thread from its current arena.
 *
 * Parsing a large body builds one cJSON node per number; with the arena
 * those nodes are carved from a few large blocks instead of one malloc
 * each, and the whole tree is released at once instead of node by node.
 *
 * Threading: cJSON_InitHooks is process-wide, so the hooks are installed
 * once (srv_json_hooks_install, idempotent and thread-safe) and decide per
 * call: a thread that has entered an arena (srv_arena_enter) allocates
 * from it; every other thread, and every other cJSON user, gets malloc and
 * free exactly as with cJSON's defaults.  The current arena is
 * thread-local, so requests on different threads never share one. */
#ifndef SRV_ARENA_H
#define SRV_ARENA_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct srv_arena_block srv_arena_block;

/* Lives on the caller's stack; the first allocations come from the
 * caller's buffer, the rest from blocks of at least `grow` bytes. */
typedef struct srv_arena {
    void *first;             /* the caller's buffer, never freed here */
    size_t first_cap, hint;  /* as given to srv_arena_init */
    char *buf;               /* the current block */
    size_t cap, used;        /* of the current block */
    size_t grow;             /* size of the next block */
    srv_arena_block *blocks; /* allocated blocks, newest first */
    int failed;              /* an allocation failed */
} srv_arena;

/* Starts an arena on buf[0..cap) (buf may be NULL with cap 0); further
 * blocks are sized from hint, the number of bytes the arena will likely
 * need in all. */
void srv_arena_init(srv_arena *a, void *buf, size_t cap, size_t hint);

/* n bytes aligned for any object, or NULL when out of memory. */
void *srv_arena_alloc(srv_arena *a, size_t n);

/* Frees every block; the arena may then be initialised again. */
void srv_arena_cleanup(srv_arena *a);

/* Frees every block and starts again as srv_arena_init left it, so that a
 * second attempt at a parse does not keep the first one's memory. */
void srv_arena_rewind(srv_arena *a);

/* Installs the cJSON hooks (once per process; later calls do nothing). */
void srv_json_hooks_install(void);

/* The hooks srv_json_hooks_install installs, for a program that switches
 * between them and cJSON's defaults itself (the parser benchmark). */
void srv_json_hooks(cJSON_Hooks *h);

/* Makes a the calling thread's arena for cJSON until srv_arena_leave.
 * cJSON memory obtained inside must not be freed or used after
 * srv_arena_cleanup; cJSON_Delete of it is a no-op and may be skipped. */
void srv_arena_enter(srv_arena *a);
void srv_arena_leave(void);

/* The calling thread's arena when cJSON's allocations come from it (the
 * hooks installed, an arena entered), else NULL.  A builder of cJSON trees
 * may then take memory for them from the arena directly: cJSON_Delete
 * treats it as its own.  Asks cJSON for one small block to find out. */
srv_arena *srv_arena_cjson(void);

/* Sets how the process returns memory, once, before any thread starts: a
 * fixed mmap threshold (which also stops glibc from raising it after each
 * free), so that every block of 1 MiB or more -- request bodies, parsed
 * tensors, gradients, responses -- is mapped for its request and returned
 * to the system when freed, and memory goes back to idle between large
 * requests instead of staying in the heap. */
void srv_memory_init(void);

/* Buffers of at least this many bytes are worth huge pages: from here up
 * malloc maps each one fresh (srv_memory_init), to be faulted in page by
 * page.  The gradients of a 256x1000 softmax (2,048,000 bytes) took 3.1 ms
 * to compute in 4 KiB pages and 2.1 ms in a huge one. */
#define SRV_HUGE_MIN ((size_t)1 << 20)

/* malloc(n) for a large buffer of a request: from SRV_HUGE_MIN bytes on,
 * aligned to 2 MiB and rounded up to a multiple of it, with the kernel
 * asked to back it with transparent huge pages.  A fault per 2 MiB in
 * place of one per 4 KiB page: on the development machine writing 16 MiB
 * fresh took 9 ms in 4 KiB pages and 1 ms in huge ones.  Freed with
 * free(); realloc keeps the advice.  NULL when out of memory. */
void *srv_huge_malloc(size_t n);

#endif
