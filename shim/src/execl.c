/* The variadic members of the exec family, which stable Rust cannot define:
 * each gathers its arguments into an array and calls the array form, which
 * the shim wraps. */
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#define MAX_ARGS 4096

#define GATHER(arg0, argv, ap)                                   \
    do {                                                         \
        size_t n = 0;                                            \
        argv[n++] = (char *)(arg0);                              \
        while (argv[n - 1] != NULL && n < MAX_ARGS)              \
            argv[n++] = va_arg(ap, char *);                      \
        argv[MAX_ARGS - 1] = NULL;                               \
    } while (0)

int execl(const char *path, const char *arg0, ...)
{
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, arg0);
    GATHER(arg0, argv, ap);
    va_end(ap);
    return execv(path, argv);
}

int execlp(const char *file, const char *arg0, ...)
{
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, arg0);
    GATHER(arg0, argv, ap);
    va_end(ap);
    return execvp(file, argv);
}

int execle(const char *path, const char *arg0, ...)
{
    char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, arg0);
    GATHER(arg0, argv, ap);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, envp);
}
