#include <stdlib.h>
__attribute__((constructor)) static void early(void) { free(malloc(32)); }
