/* A program with its own malloc that reads a file while it initializes
   (as jemalloc reads /etc/malloc.conf), called first from a library's
   constructor, before the preloaded shim's own constructor has run. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;
static _Alignas(16) char heap[8 << 20];
static size_t used;
static void init_once(void) {
    pthread_mutex_lock(&init_lock);
    if (!ready) {
        char buf[64];
        readlink("/etc/malloc.conf", buf, sizeof buf);
        ready = 1;
    }
    pthread_mutex_unlock(&init_lock);
}
void *malloc(size_t n) {
    if (!ready) init_once();
    size_t *p = (size_t *)(heap + used);
    used += 16 + ((n + 15) & ~(size_t)15);
    if (used > sizeof heap) return NULL;
    *p = n;
    return (char *)p + 16;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) { void *p = malloc(a * b); if (p) memset(p, 0, a * b); return p; }
void *realloc(void *p, size_t n) {
    void *q = malloc(n);
    if (p && q) { size_t old = *(size_t *)((char *)p - 16); memcpy(q, p, old < n ? old : n); }
    return q;
}
int main(void) { puts("started"); return 0; }
