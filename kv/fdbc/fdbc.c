// C helpers for package fdbc. Go cannot call a C function pointer; this
// trampoline calls an FDBCallback for it. It lives in a .c file because a
// non-static definition in the preamble of a file with //export would be
// defined twice at link time.
#include <stdint.h>

typedef void (*fdbc_callback)(void*, void*);

void fdbc_fire(uintptr_t callback, uintptr_t future, void* parameter) {
	((fdbc_callback)callback)((void*)future, parameter);
}
